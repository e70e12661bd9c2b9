// The health of a background task of the agent, like Cilium's controllers.
import type { ControllerStatus } from "../api/types.ts";

/** Counts the runs and failures of one background task. */
export class Controller {
  /** The task's name. */
  readonly name: string;
  #runs = 0;
  #failures = 0;
  #lastSuccess: Date | undefined;
  #lastError: string | undefined;

  /**
   * Creates it.
   *
   * @param name The task's name.
   */
  constructor(name: string) {
    this.name = name;
  }

  /** Records a successful run. */
  succeeded(): void {
    this.#runs++;
    this.#failures = 0;
    this.#lastSuccess = new Date();
    this.#lastError = undefined;
  }

  /**
   * Records a failed run.
   *
   * @param err What failed.
   */
  failed(err: unknown): void {
    this.#runs++;
    this.#failures++;
    this.#lastError = err instanceof Error ? err.message : String(err);
  }

  /**
   * The status for `dp status`.
   *
   * @returns The status.
   */
  status(): ControllerStatus {
    return {
      name: this.name,
      runs: this.#runs,
      failures: this.#failures,
      lastSuccess: this.#lastSuccess?.toISOString(),
      lastError: this.#lastError,
    };
  }
}
