require('./run.js')('post');
