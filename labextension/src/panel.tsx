import * as React from 'react';
import { ReactWidget } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';

import { DescribeMe, MlplatApi, errorMessage } from './api';
import { ErrorLine } from './components/ErrorLine';
import { DeploymentsTab } from './tabs/DeploymentsTab';
import { JobsTab } from './tabs/JobsTab';
import { ModelsTab } from './tabs/ModelsTab';
import { PipelinesTab } from './tabs/PipelinesTab';
import { RunsTab } from './tabs/RunsTab';
import { OpenNotebook, TabProps } from './tabs/types';

export const PANEL_ID = 'mlplat-panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M9 2h6v2h-1v5.2l5.6 9.7A2 2 0 0 1 17.9 22H6.1a2 2 0 0 1-1.7-3.1L10 9.2V4H9V2zm3 8.3L8.2 17h7.6L12 10.3z"/>
  </g>
</svg>`;

export const mlplatIcon = new LabIcon({ name: 'jupyter-mlplat:panel', svgstr: ICON_SVG });

const TABS = [
  { id: 'runs', label: 'Runs', Component: RunsTab },
  { id: 'models', label: 'Models', Component: ModelsTab },
  { id: 'deployments', label: 'Deployments', Component: DeploymentsTab },
  { id: 'jobs', label: 'Jobs', Component: JobsTab },
  { id: 'pipelines', label: 'Pipelines', Component: PipelinesTab }
] as const;

type TabId = (typeof TABS)[number]['id'];

interface PanelViewProps {
  api: MlplatApi;
  openNotebook: OpenNotebook;
  visible: boolean;
}

function PanelView(props: PanelViewProps): JSX.Element {
  const { api, openNotebook, visible } = props;
  const [current, setCurrent] = React.useState<TabId>('runs');
  // A tab is mounted the first time it is shown, and kept (its loaded pages stay).
  const [visited, setVisited] = React.useState<Set<TabId>>(new Set());
  const [me, setMe] = React.useState<DescribeMe | null>(null);
  const [meError, setMeError] = React.useState<string | null>(null);
  const tabRefs = React.useRef<Record<string, HTMLButtonElement | null>>({});

  React.useEffect(() => {
    if (visible && !visited.has(current)) {
      setVisited(new Set(visited).add(current));
    }
  }, [visible, current, visited]);

  React.useEffect(() => {
    if (!visible || me) {
      return;
    }
    api
      .me()
      .then(answer => {
        setMe(answer);
        setMeError(null);
      })
      .catch(e => setMeError(errorMessage(e)));
  }, [api, visible, me]);

  const select = (id: TabId, focus = false) => {
    setCurrent(id);
    if (focus) {
      tabRefs.current[id]?.focus();
    }
  };

  const onTabKey = (event: React.KeyboardEvent, index: number) => {
    const moves: Record<string, number> = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      Home: 0,
      End: TABS.length - 1
    };
    if (event.key in moves) {
      event.preventDefault();
      const next = (moves[event.key] + TABS.length) % TABS.length;
      select(TABS[next].id, true);
    }
  };

  return (
    <div className="mlplat-panel">
      <header className="mlplat-header">
        <h2>ML platform</h2>
        {me ? (
          <span className="mlplat-me">
            {me.user}
            {me.teams.length ? ` · ${me.teams.join(', ')}` : ''}
            {me.roles.length ? ` · ${me.roles.join(', ')}` : ''}
          </span>
        ) : null}
      </header>
      <ErrorLine message={meError} />
      <div role="tablist" aria-label="ML platform" className="mlplat-tablist">
        {TABS.map((tab, index) => (
          <button
            key={tab.id}
            ref={node => {
              tabRefs.current[tab.id] = node;
            }}
            type="button"
            role="tab"
            id={`mlplat-tabbutton-${tab.id}`}
            aria-selected={current === tab.id}
            aria-controls={`mlplat-tabpanel-${tab.id}`}
            tabIndex={current === tab.id ? 0 : -1}
            className={`mlplat-tab${current === tab.id ? ' mlplat-mod-current' : ''}`}
            onClick={() => select(tab.id)}
            onKeyDown={event => onTabKey(event, index)}
          >
            {tab.label}
          </button>
        ))}
      </div>
      {TABS.map(tab => {
        const tabProps: TabProps = {
          api,
          me,
          openNotebook,
          active: visible && current === tab.id
        };
        return (
          <div
            key={tab.id}
            role="tabpanel"
            id={`mlplat-tabpanel-${tab.id}`}
            aria-labelledby={`mlplat-tabbutton-${tab.id}`}
            data-testid={`mlplat-tab-${tab.id}`}
            hidden={current !== tab.id}
            className="mlplat-tabpanel"
          >
            {visited.has(tab.id) ? <tab.Component {...tabProps} /> : null}
          </div>
        );
      })}
    </div>
  );
}

/**
 * The side panel. It knows whether it is shown (the sidebar may be collapsed or show
 * another panel) so that only the visible tab of a visible panel polls.
 */
export class MlplatPanel extends ReactWidget {
  private shown = false;

  constructor(private readonly options: { api: MlplatApi; openNotebook: OpenNotebook }) {
    super();
    this.id = PANEL_ID;
    this.addClass('mlplat-widget');
    this.title.icon = mlplatIcon;
    this.title.caption = 'ML platform';
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.shown = true;
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.shown = false;
    this.update();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.shown = this.isVisible;
    this.update();
  }

  protected onBeforeDetach(msg: Message): void {
    this.shown = false;
    this.update();
    super.onBeforeDetach(msg);
  }

  render(): JSX.Element {
    return (
      <PanelView
        api={this.options.api}
        openNotebook={this.options.openNotebook}
        visible={this.shown}
      />
    );
  }
}
