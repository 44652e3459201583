/**
 * The live folders of a hierarchy, for the composite scopes (`mail()`, `contacts()`): kept by
 * syncing the hierarchy scope itself through the engine, with an in-memory state, so listing
 * the children of a round costs one delta request when nothing changed.
 */
import { StateInvalidError } from "../../src/core/errors.js";
import type { Syncable } from "../../src/core/syncable.js";
import type { Importer } from "../../src/core/types.js";

export class FolderSet {
  readonly #hierarchy: Syncable;
  /** Folder id → parent id. */
  readonly #folders = new Map<string, string | undefined>();
  #state: string | undefined;
  /** The refresh in flight: the next one waits for it (each runs with its own signal). */
  #last: Promise<unknown> = Promise.resolve();

  constructor(hierarchy: Syncable) {
    this.#hierarchy = hierarchy;
  }

  /** Folder ids known after the last `refresh()`. */
  has(id: string): boolean {
    return this.#folders.has(id);
  }

  /** Brings the set up to date and returns every live folder id (one refresh at a time). */
  refresh(signal: AbortSignal): Promise<string[]> {
    const next = this.#last.then(
      () => this.#refresh(signal),
      () => this.#refresh(signal),
    );
    this.#last = next.catch(() => undefined);
    return next;
  }

  async #refresh(signal: AbortSignal): Promise<string[]> {
    const folders = this.#folders;
    const importer: Importer = {
      update: (obj) => void folders.set(obj.sourcekey, obj.parentKey),
      delete: (obj) => this.#remove(obj.sourcekey),
    };
    try {
      this.#state = await this.#hierarchy.sync(importer, this.#state, { signal });
    } catch (error) {
      if (!(error instanceof StateInvalidError)) throw error;
      folders.clear();
      this.#state = await this.#hierarchy.sync(importer, undefined, { signal });
    }
    return [...folders.keys()];
  }

  /** Removes a folder and (if Graph reported only the top one) everything below it. */
  #remove(id: string): void {
    this.#folders.delete(id);
    for (const [child, parent] of this.#folders) if (parent === id) this.#remove(child);
  }
}
