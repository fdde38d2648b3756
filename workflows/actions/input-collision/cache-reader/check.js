// The check main.js and post.js share: INPUT_CACHE must be "true" or "false", and the expected one.
module.exports = function checkCache(stage) {
  const cache = process.env.INPUT_CACHE;
  const expected = process.env['INPUT_EXPECT-CACHE'];
  if (cache !== 'true' && cache !== 'false') throw new Error(`${stage}: INPUT_CACHE is polluted: expected true or false, got ${JSON.stringify(cache)}`);
  if (cache !== expected) throw new Error(`${stage}: INPUT_CACHE is ${cache}, expected ${expected}`);
  return process.env.INPUT_STEP;
};
