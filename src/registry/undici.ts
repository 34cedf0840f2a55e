/**
 * The two parts of undici kiln uses, Agent and Dispatcher#request, loaded without undici's
 * index.js: the index also loads fetch, WebSocket, EventSource, the caches and the mocks, which
 * cost every registry command (pull, push, login) ~30 ms of start-up. The API mixin installed
 * here is the one undici's index installs on Dispatcher.prototype (assigning it twice, should
 * something load the index too, changes nothing: the files are the same modules).
 */
import type * as Undici from 'undici';

/* eslint-disable @typescript-eslint/no-require-imports */
const dispatcher = require('undici/lib/dispatcher/dispatcher') as typeof Undici.Dispatcher;
Object.assign(dispatcher.prototype, require('undici/lib/api') as object);
/** undici's Agent (a pool of connections per origin). */
export const Agent = require('undici/lib/dispatcher/agent') as typeof Undici.Agent;
/* eslint-enable @typescript-eslint/no-require-imports */

export type Agent = Undici.Agent;
