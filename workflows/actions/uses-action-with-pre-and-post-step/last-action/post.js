// Runs after the other action's post stage, so its GITHUB_ENV writes are visible here.
const pre = process.env.ACTION_OUTPUT_PRE;
const main = process.env.ACTION_OUTPUT_MAIN;
const post = process.env.ACTION_OUTPUT_POST;
console.log({ pre, main, post });

if (pre !== undefined) throw new Error(`a local action has no pre stage, yet ACTION_OUTPUT_PRE is ${JSON.stringify(pre)}`);
if (main !== 'main') throw new Error(`expected ACTION_OUTPUT_MAIN=main, got ${JSON.stringify(main)}`);
if (post !== 'post') throw new Error(`expected ACTION_OUTPUT_POST=post, got ${JSON.stringify(post)}`);
console.log(['mark', 'post', 'last-action'].join(':'));
