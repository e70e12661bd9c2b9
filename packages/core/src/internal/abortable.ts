/**
 * Wraps an event generator so that `return()` and `throw()` stop it at once.
 * An async generator queues `return()` behind a pending `next()`, which
 * waits for an event that may never come: the wrapper aborts the signal the
 * generator waits on first. `signal` (the caller's) stops it too.
 *
 * @typeParam T The events.
 * @param signal The caller's signal, if any.
 * @param start Starts the generator with the signal it must honour.
 * @returns The wrapped generator (also `await using`-disposable).
 */
export function abortableGenerator<T>(
  signal: AbortSignal | undefined,
  start: (signal: AbortSignal) => AsyncGenerator<T, void, undefined>,
): AsyncGenerator<T, void, undefined> {
  const stop = new AbortController();
  const gen = start(signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]));
  const it: AsyncGenerator<T, void, undefined> = {
    next: () => gen.next(),
    return: (value) => {
      stop.abort();
      return gen.return(value);
    },
    throw: (err: unknown) => {
      stop.abort();
      return gen.throw(err);
    },
    [Symbol.asyncIterator]: () => it,
    [Symbol.asyncDispose]: async () => {
      await it.return(undefined);
    },
  };
  return it;
}
