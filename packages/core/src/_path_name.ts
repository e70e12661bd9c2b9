// Names that dp turns into file system paths (network namespace names under
// /run/netns, map names pinned under a bpffs directory) must name one entry
// of that directory: never "." or "..", never a "/" or a NUL byte.

/**
 * Whether `name` can be used as one component of a path: a non-empty
 * string that is not `.` or `..` and holds no `/` and no NUL byte.
 *
 * @param name The name to check.
 * @returns `true` when joining it to a directory names an entry of that directory.
 */
export function isPathComponent(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.length > 0 &&
    name !== "." &&
    name !== ".." &&
    !name.includes("/") &&
    !name.includes("\0")
  );
}
