// Polling for tests: what a person would do while watching a value settle.

/** Resolves with f()'s first truthy value; rejects after `ms` saying what was awaited. */
export async function until<T>(what: string, f: () => T | undefined | null | false, ms = 30_000, stepMs = 5): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Like until(), for a condition that must be awaited (an API call); `stepMs` between tries. */
export async function eventually(what: string, cond: () => Promise<unknown> | unknown, ms = 30_000, stepMs = 50): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
