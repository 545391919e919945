// The engine a server has while its model is still loading. `serve` listens at once (so /health is
// observable as 503 during load) and hands the real engine over when it exists; until then requests
// are refused with 503 and Retry-After, and `info` is the provisional one the caller derived from
// the model's files.
import {
  EngineError, type Engine, type EngineHealth, type EngineStats, type GenerateRequest, type ModelInfo, type TokenEvent,
} from "../engine/types.ts";

export class LoadingEngine implements Engine {
  private engine: Engine | null = null;
  private failure: string | null = null;

  constructor(private readonly provisional: ModelInfo) {}

  get info(): ModelInfo {
    return this.engine?.info ?? this.provisional;
  }

  /** The model is loaded: from now on everything goes to `engine`. */
  loaded(engine: Engine): void {
    this.engine = engine;
  }

  /** Loading failed: /health says why until the process exits. */
  failed(reason: string): void {
    this.failure = reason;
  }

  async *generate(req: GenerateRequest): AsyncGenerator<TokenEvent> {
    if (!this.engine) throw new EngineError("The model is still loading; retry shortly.", "unavailable", 5);
    yield* this.engine.generate(req);
  }

  stats(): EngineStats {
    if (!this.engine) throw new Error("the model is still loading");
    return this.engine.stats();
  }

  health(): EngineHealth {
    if (this.engine) return this.engine.health();
    return { ready: false, reason: this.failure ?? "loading the model" };
  }

  async warmup(): Promise<void> {
    await this.engine?.warmup?.();
  }

  async close(): Promise<void> {
    await this.engine?.close();
  }
}
