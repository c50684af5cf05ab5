/** Texts that are near misses of real ones, for parser properties. */
import fc from "fast-check";

/** One of `texts` with up to 20 characters deleted at some point and up to 8 from `alphabet` inserted there. */
export function mutatedText(texts: readonly string[], alphabet: string): fc.Arbitrary<string> {
  const unit = fc.constantFrom(...alphabet);
  return fc.tuple(fc.constantFrom(...texts), fc.nat(), fc.nat(20), fc.string({ unit, maxLength: 8 })).map(([t, at, del, ins]) => {
    const i = at % (t.length + 1);
    return t.slice(0, i) + ins + t.slice(i + del);
  });
}
