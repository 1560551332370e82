import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Model, State } from '../model.js';

export const ModelContext = createContext<Model | null>(null);

/** The model, and a re-render whenever its state changes. */
export function useModel(): [Model, State] {
  const model = useContext(ModelContext);
  if (!model) throw new Error('no model');
  const [, setVersion] = useState(0);
  useEffect(() => model.subscribe(() => setVersion((n) => n + 1)), [model]);
  return [model, model.state];
}
