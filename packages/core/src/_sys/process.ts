// Process-level facilities core uses outside system calls.

/** Reads an environment variable. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** Emits a process warning of the given type. */
export function emitWarning(message: string, type: string): void {
  process.emitWarning(message, { type });
}
