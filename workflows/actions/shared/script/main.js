require('./run.js')('main');
