// What `npm start` runs, built to dist/server.js: the Node server process (src/runtime/node.ts).
// A separate entry because node.ts is also a library of the CLIs (db:migrate imports it).
import { start } from './node';

start();
