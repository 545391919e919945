/** A constraint that cannot be compiled or enforced (the gateway answers it with a 400). */
export class GrammarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrammarError";
  }
}
