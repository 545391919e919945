// Finding marker strings (<think>, <｜tool▁call▁begin｜>, ...) in text that arrives in pieces: what may
// still turn out to be the start of a marker is held back until the next piece says.

/** Length of the longest suffix of `text` that is a proper prefix of one of `markers`. */
export function partialMarker(text: string, markers: readonly string[]): number {
  let best = 0;
  for (const m of markers) {
    for (let n = Math.min(m.length - 1, text.length); n > best; n--) {
      if (text.endsWith(m.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/** The first of `markers` in `text`, with its position, or null. */
export function firstMarker(text: string, markers: readonly string[]): { at: number; marker: string } | null {
  let found: { at: number; marker: string } | null = null;
  for (const marker of markers) {
    const at = text.indexOf(marker);
    if (at >= 0 && (found === null || at < found.at)) found = { at, marker };
  }
  return found;
}
