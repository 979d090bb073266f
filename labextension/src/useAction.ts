/**
 * One action at a time in a details view: its result sentence or its error sentence
 * (shown in place), and whether it is under way.
 */

import * as React from 'react';

import { errorMessage } from './api';

export interface Action {
  result: string | null;
  error: string | null;
  busy: boolean;
  /** Run `action`; its answer becomes the result, a failure the error; then `after`. */
  act: (action: () => Promise<string | null>) => Promise<void>;
  setResult: (text: string | null) => void;
  setError: (text: string | null) => void;
}

export function useAction(after?: () => void): Action {
  const [result, setResult] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const act = async (action: () => Promise<string | null>) => {
    setBusy(true);
    setResult(null);
    setError(null);
    try {
      setResult(await action());
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
      after?.();
    }
  };
  return { result, error, busy, act, setResult, setError };
}
