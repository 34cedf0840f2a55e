/**
 * What every engine call gets: the global options (podman's --root/--runroot) and a lazily
 * opened store. The engine is a library: the CLI and a later REST API build an EngineContext
 * and call the same functions.
 */
import { Store } from '../store/store';
import type { StoreOptions } from '../store/paths';

export interface GlobalOptions extends StoreOptions {}

export class EngineContext {
  private opened: Store | undefined;
  constructor(readonly options: GlobalOptions = {}) {}

  get store(): Store {
    if (this.opened === undefined) this.opened = Store.open(this.options);
    return this.opened;
  }

  close(): void {
    this.opened?.close();
    this.opened = undefined;
  }
}
