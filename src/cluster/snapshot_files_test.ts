import assert from "node:assert/strict";
import { SnapshotFiles, syncDir } from "./snapshot_files.ts";

Deno.test("SnapshotFiles.keep() syncs the directory after the rename, before it returns the ref", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const synced: { dir: string; renamed: boolean }[] = [];
    const files = new SnapshotFiles(dir, {
      syncDir: (d) => synced.push({ dir: d, renamed: exists(`${d}/7-2.snap`) }),
    });
    const tmp = files.tempPath("write");
    Deno.writeTextFileSync(tmp, "x");
    const ref = files.keep(tmp, 7, 2, 1, "h");
    assert.deepEqual(ref, { file: "7-2.snap", bytes: 1, sha256: "h" });
    assert.deepEqual(synced, [{ dir, renamed: true }]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("syncDir() fsyncs a real directory without error", () => {
  const dir = Deno.makeTempDirSync();
  try {
    syncDir(dir);
    assert.throws(() => syncDir(`${dir}/missing`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
