// make-model --router-skew S: gate correction biases that make some experts much hotter, so that
// expert load balancing (online EPLB) has something to measure. The bias is Zipf-like, largest for
// expert 0 and falling by 0.1*S per unit of ln(1 + e) (a sigmoid gate's unbiased scores spread
// ~0.2 on random weights), on top of the random biases every checkpoint gets. It only chooses
// experts (DeepSeek-V3's noaux_tc never weights by it), so the model stays a valid one.
const SKEW_SCALE = 0.1;

/** The bias added to expert e's e_score_correction_bias under --router-skew S. */
export function skewBias(e: number, S: number): number {
  return -SKEW_SCALE * S * Math.log1p(e);
}
