// Runs in every test file: after the file's tests, collect garbage, let
// finalizers run and fail the file when a descriptor leaked (closed by the
// safety net) or is still open.
import { afterAll } from "vitest";
import { openFds, takeFdLeaks } from "@dp/core/internal";

function describe(list: { what: string; stack: string | undefined }[]): string {
  return list.map((l) => `- ${l.what}${l.stack ? `\n${l.stack.split("\n").slice(1, 8).join("\n")}` : ""}`).join("\n");
}

afterAll(async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const leaked = takeFdLeaks();
  const open = openFds();
  if (leaked.length > 0 || open.length > 0) {
    throw new Error(
      `File descriptors leaked by this test file:\n${describe(leaked)}${leaked.length && open.length ? "\n" : ""}${
        open.length ? `still open:\n${describe(open)}` : ""
      }`,
    );
  }
});
