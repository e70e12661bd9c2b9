// A promise queue: jobs run one at a time, in the order they were queued.
// EniPool runs every reconciliation through one, so parallel allocate()
// calls never race on EC2 or on the pool's bookkeeping.

/** Runs async jobs one after the other. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /**
   * Queues a job.
   *
   * @param job The job; it starts once every job queued before it settled.
   * @returns What the job returns.
   */
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
