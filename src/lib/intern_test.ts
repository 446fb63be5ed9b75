import assert from "node:assert/strict";
import { intern, Interner, internList } from "./intern.ts";

Deno.test("intern() returns one copy for equal strings built apart", () => {
  const a = ["10.0.", "0.1"].join("");
  const b = `10.0.0.${1}`;
  assert.equal(intern(a), intern(b));
  assert.equal(intern(b), a);
});

Deno.test("internList() returns one frozen array for equal lists, and keeps order apart", () => {
  const one = internList(["v1", "blue"]);
  assert.equal(internList(["v1", "blue"]), one);
  assert.ok(Object.isFrozen(one));
  assert.notEqual(internList(["blue", "v1"]), one);
  assert.deepEqual(internList([]), []);
  // No separator collides: ["a,b"] is not ["a", "b"].
  assert.notDeepEqual(internList(["a,b"]), internList(["a", "b"]));
});

Deno.test("Interner keeps at most two generations and promotes what it finds in the older", () => {
  const i = new Interner<string>(2);
  i.add("a", "A");
  i.add("b", "B");
  i.add("c", "C"); // {a, b} becomes the previous generation
  assert.equal(i.size, 3);
  assert.equal(i.get("a"), "A"); // promoted into the current generation {c, a}
  i.add("d", "D"); // {c, a} becomes the previous one; {a, b} is dropped
  assert.equal(i.get("b"), undefined);
  assert.equal(i.get("a"), "A");
  assert.ok(i.size <= 4);
});
