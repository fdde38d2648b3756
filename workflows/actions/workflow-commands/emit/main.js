// The runner reads commands from an action's stdout exactly as from a script's.
console.log('::set-output name=from-js::js-value');
console.log('::notice title=From JavaScript::a notice from an action');
console.log('::group::from the action');
console.log('inside');
console.log('::endgroup::');
