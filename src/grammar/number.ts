// JSON numbers within [minimum, maximum], byte by byte. The written forms are -?(0|[1-9]d*)(.d+)?
// (no exponent; integers without a fraction), at most INT_DIGITS integer digits and FRAC_DIGITS
// fraction digits. A prefix is allowed only when some completion of it lies in range: `witness`
// finds the shortest one, checked by parsing it as JSON.parse would, so the constraint never
// lets a number start that cannot end validly (and knows how many bytes ending it takes).

export const INT_DIGITS = 15; // keeps every integer exact in a float64
export const FRAC_DIGITS = 8;

export interface NumberSpec {
  int: boolean;
  lo: number; // -Infinity when unbounded
  hi: number;
}

const SYNTAX_INT = /^-?(0|[1-9][0-9]*)?$/;
const SYNTAX_NUM = /^-?((0|[1-9][0-9]*)(\.[0-9]*)?)?$/;

export class NumberRange {
  private readonly cache = new Map<string, string | null>();
  constructor(readonly spec: NumberSpec) {
    if (spec.lo > spec.hi) throw new Error(`minimum ${spec.lo} is above maximum ${spec.hi}`);
    if (this.witness("") === null) throw new Error(`no ${spec.int ? "integer" : "number"} lies in [${spec.lo}, ${spec.hi}]`);
  }

  /** `s` is a whole number in range. */
  complete(s: string): boolean {
    if (!/[0-9]$/.test(s) || !this.syntax(s)) return false;
    const v = Number(s);
    return v >= this.spec.lo && v <= this.spec.hi;
  }

  /** `s` can still become a number in range. */
  viable(s: string): boolean {
    return this.syntax(s) && this.witness(s) !== null;
  }

  /** Bytes still needed to complete `s` (Infinity when it cannot be). */
  minClose(s: string): number {
    const w = this.witness(s);
    return w === null ? Infinity : w.length - s.length;
  }

  private syntax(s: string): boolean {
    const [i, f] = s.replace(/^-/, "").split(".");
    if (i.length > INT_DIGITS || (f !== undefined && f.length > FRAC_DIGITS)) return false;
    return (this.spec.int ? SYNTAX_INT : SYNTAX_NUM).test(s);
  }

  /** The shortest completion of `s` that is a number in range, or null. */
  witness(s: string): string | null {
    const hit = this.cache.get(s);
    if (hit !== undefined) return hit;
    const w = this.search(s);
    if (this.cache.size > 4096) this.cache.clear();
    this.cache.set(s, w);
    return w;
  }

  private search(s: string): string | null {
    if (!this.syntax(s)) return null;
    if (this.complete(s)) return s;
    if (s === "" || s === "-") { // the first digit decides the magnitude: try each
      let best: string | null = null;
      for (const d of "0123456789") {
        const w = this.witness(s + d);
        if (w !== null && (best === null || w.length < best.length)) best = w;
      }
      if (s === "" && this.spec.lo < 0) {
        const w = this.witness("-");
        if (w !== null && (best === null || w.length < best.length)) best = w;
      }
      return best;
    }
    const neg = s.startsWith("-"), body = neg ? s.slice(1) : s;
    // the range of magnitudes this sign allows
    const mlo = neg ? Math.max(0, -this.spec.hi) : Math.max(0, this.spec.lo);
    const mhi = neg ? -this.spec.lo : this.spec.hi;
    if (mlo > mhi) return null;
    const sign = neg ? "-" : "";
    const check = (w: string): string | null => (w.startsWith(s) && this.complete(w) ? w : null);
    const [ip, fp] = body.split(".");
    let best: string | null = null;
    const keep = (w: string | null) => { if (w !== null && (best === null || w.length < best.length)) best = w; };
    if (fp === undefined) {
      const P = Number(ip);
      for (let k = 0; ip !== "0" ? ip.length + k <= INT_DIGITS : k === 0; k++) {
        if (best !== null && (best as string).length <= s.length + k) break;
        const a = P * 10 ** k, b = (P + 1) * 10 ** k; // magnitudes [a, b) with k more digits
        const lo = Math.max(a, Math.ceil(mlo)), hi = Math.min(b - 1, Math.floor(mhi));
        if (lo <= hi) keep(check(sign + String(lo)));
        if (!this.spec.int) for (let j = 1; j <= FRAC_DIGITS && s.length + k + 1 + j < (best ?? "x".repeat(99)).length; j++)
          keep(this.fraction(sign, Math.max(a, mlo), Math.min(b, mhi), j, s, check, b));
      }
      return best;
    }
    // inside the fraction: magnitudes [x, x + 10^-len(fp))
    const x = Number(`${ip}.${fp || "0"}`), step = 10 ** -fp.length;
    for (let j = Math.max(1, fp.length); j <= FRAC_DIGITS && best === null; j++)
      keep(this.fraction(sign, Math.max(x, mlo), Math.min(x + step, mhi), j, s, check, x + step));
    return best;
  }

  /** A number with exactly j fraction digits whose magnitude lies in [lo, hi] (hi excluded when it
   * is the open end `openEnd` of the prefix's range), written with `sign`. */
  private fraction(sign: string, lo: number, hi: number, j: number, s: string,
                   check: (w: string) => string | null, openEnd: number): string | null {
    const scale = 10 ** j;
    let m = Math.ceil(lo * scale - 1e-9);
    const top = hi === openEnd ? Math.ceil(hi * scale) - 1 : Math.floor(hi * scale + 1e-9);
    for (let tries = 0; m <= top && tries < 3; m++, tries++) {
      const ip = Math.floor(m / scale), fp = String(m - ip * scale).padStart(j, "0");
      const w = check(`${sign}${ip}.${fp}`);
      if (w !== null) return w;
      if (!`${sign}${ip}.${fp}`.startsWith(s)) continue;
    }
    return null;
  }
}
