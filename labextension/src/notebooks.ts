/**
 * Opening a notebook the platform keeps (a run's snapshot, a job's executed copy):
 * saved as a file of its own below mlplat-views/ in the user's root, then opened.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { IDocumentManager } from '@jupyterlab/docmanager';

import { NotebookContent, errorMessage } from './api';
import { completed } from './format';
import type { OpenNotebook } from './tabs/types';

export const VIEWS_FOLDER = 'mlplat-views';

export function notebookOpener(
  app: JupyterFrontEnd,
  docManager: IDocumentManager | null
): OpenNotebook {
  const contents = app.serviceManager.contents;

  return async (name: string, content: NotebookContent): Promise<string> => {
    const path = `${VIEWS_FOLDER}/${name}`;
    try {
      // Saving a folder that exists changes nothing, so no need to look first.
      await contents.save(VIEWS_FOLDER, { type: 'directory' });
      await contents.save(path, { type: 'notebook', format: 'json', content: completed(content) });
    } catch (error) {
      throw new Error(`Could not save ${path} in your files: ${errorMessage(error)}`);
    }
    // An open copy would keep showing the old content; load the new one into it.
    const open = docManager?.findWidget(path);
    if (open) {
      await open.context.revert();
    }
    await app.commands.execute('docmanager:open', { path });
    return path;
  };
}

