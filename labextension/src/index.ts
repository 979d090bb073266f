import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { ServerConnection } from '@jupyterlab/services';

import { MlplatApi } from './api';
import { notebookOpener } from './notebooks';
import { NotificationPoller } from './notifier';
import { Notice } from './notify';
import { MlplatPanel } from './panel';

function showNotice(notice: Notice): void {
  Notification[notice.kind](notice.message, { autoClose: notice.kind === 'error' ? false : 8000 });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlplat:panel',
  description: 'The ML platform side panel: runs, models, deployments, jobs and pipelines.',
  autoStart: true,
  optional: [IDocumentManager],
  activate: (app: JupyterFrontEnd, docManager: IDocumentManager | null) => {
    const settings = ServerConnection.makeSettings();
    const base = URLExt.join(settings.baseUrl, 'mlplat');
    // makeRequest adds the server's auth (token or cookie and the XSRF header).
    const api = new MlplatApi((path, init) =>
      ServerConnection.makeRequest(`${base}/${path}`, init, settings)
    );

    const panel = new MlplatPanel({ api, openNotebook: notebookOpener(app, docManager) });
    app.shell.add(panel, 'left', { rank: 850 });

    new NotificationPoller(api, showNotice).start();
  }
};

export default plugin;
