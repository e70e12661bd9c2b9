// An EC2 error response the fake endpoint sends: EC2's code, message and
// HTTP status.

/** Thrown inside the fake to answer with an EC2 error document. */
export class FakeEc2Fault extends Error {
  override readonly name: string = "FakeEc2Fault";
  /** EC2's error code. */
  readonly code: string;
  /** The HTTP status. */
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}
