import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { errorText, t } from '../i18n.js';
import { navigate } from '../router.js';
import type { CategoryView, PrincipalRef, RoomView } from '../types.js';
import { useModel } from './hooks.js';

type Field =
  | 'name'
  | 'category'
  | 'description'
  | 'privacy'
  | 'type'
  | 'invitations'
  | 'disabled'
  | 'members'
  | 'managers'
  | 'presenters';

interface Values {
  name: string;
  category: string;
  description: string;
  privacy: 'open' | 'closed' | 'secret';
  type: 'normal' | 'auditorium';
  invitations: 'inherit' | 'off';
  disabled: boolean;
  members: string;
  managers: string;
  presenters: string;
}

const lists = ['members', 'managers', 'presenters'] as const;

function splitNames(s: string): string[] {
  return s
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

function names(list: PrincipalRef[] | undefined): string {
  return (list ?? []).map((p) => p.name).join(', ');
}

/** Which field a server error is about, so that it is shown next to it. */
export function fieldOf(err: ApiError, values: Values): Field | null {
  if (err.code === 'name_taken') return 'name';
  if (err.code === 'category_not_found') return 'category';
  const issues = err.details?.issues;
  if (Array.isArray(issues)) {
    const path = String((issues[0] as { path?: unknown } | undefined)?.path ?? '').split('.')[0];
    if (path && path in values) return path as Field;
  }
  const bad = err.details?.names;
  const mentioned = Array.isArray(bad) ? bad.map(String) : [];
  for (const l of lists) {
    const own = splitNames(values[l]).map((n) => n.toLowerCase());
    if (mentioned.some((n) => own.includes(n.toLowerCase()))) return l;
    if (own.some((n) => err.message.toLowerCase().includes(n))) return l;
  }
  if (err.code === 'principal_out_of_scope' || err.code === 'principal_not_found') return 'members';
  return null;
}

/** The server's error about a field, next to it (referenced by the field's aria-describedby). */
function FieldError({ field, text }: { field: Field; text: string | undefined }) {
  if (!text) return null;
  return (
    <span class="field-error" id={`${field}-error`} role="alert" data-testid={`${field}-error`}>
      {text}
    </span>
  );
}

/** A labelled choice among fixed values, with the server's error about it next to it. */
function SelectField<V extends string>({
  field,
  label,
  value,
  options,
  error,
  onChange,
}: {
  field: Field;
  label: string;
  value: V;
  options: [V, string][];
  error: string | undefined;
  onChange: (value: V) => void;
}) {
  return (
    <label>
      {label}
      <select
        name={field}
        value={value}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${field}-error` : undefined}
        onChange={(e) => onChange(e.currentTarget.value as V)}
      >
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
      <FieldError field={field} text={error} />
    </label>
  );
}

export function RoomForm({ roomId }: { roomId?: number }) {
  const [model, state] = useModel();
  const editing = roomId !== undefined;
  const [categories, setCategories] = useState<CategoryView[]>([]);
  const [room, setRoom] = useState<RoomView | null>(null);
  const [values, setValues] = useState<Values>({
    name: '',
    category: '',
    description: '',
    privacy: 'closed',
    type: 'normal',
    invitations: 'inherit',
    disabled: false,
    members: '',
    managers: '',
    presenters: '',
  });
  const [errors, setErrors] = useState<Partial<Record<Field | 'form', string>>>({});
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [suggestions, setSuggestions] = useState<PrincipalRef[]>([]);
  const isAdmin = state.session?.user.isAdmin ?? false;

  useEffect(() => {
    model.http<CategoryView[]>('GET', '/categories').then(
      (cs) => {
        const usable = cs.filter((c) => isAdmin || c.canCreate);
        setCategories(usable);
        // A new room has its creator as a member, so that a closed room is readable at once.
        if (!editing && usable[0])
          setValues((v) => ({
            ...v,
            category: v.category || String(usable[0]!.id),
            members: v.members || (state.session?.user.name ?? ''),
          }));
      },
      () => setCategories([]),
    );
    if (editing) {
      model.http<RoomView>('GET', `/rooms/${roomId}`).then(
        (r) => {
          setRoom(r);
          setValues({
            name: r.name,
            category: String(r.category.id),
            description: r.description,
            privacy: r.privacy,
            type: r.type,
            invitations: r.invitations,
            disabled: r.disabled,
            members: names(r.members),
            managers: names(r.managers),
            presenters: names(r.presenters),
          });
        },
        (err: unknown) =>
          setErrors({
            form: err instanceof ApiError ? errorText(err.code, err.message) : String(err),
          }),
      );
    }
  }, [roomId]);

  function set<K extends keyof Values>(k: K, v: Values[K]) {
    setValues((x) => ({ ...x, [k]: v }));
    setSaved(false);
  }

  async function lookup(text: string) {
    const last = text.split(',').at(-1)?.trim() ?? '';
    if (last.length < 2) return setSuggestions([]);
    try {
      const found = await model.http<PrincipalRef[]>(
        'GET',
        `/principals?filter=${encodeURIComponent(last)}&limit=10`,
      );
      setSuggestions(found);
    } catch {
      setSuggestions([]);
    }
  }

  async function submit(e: Event) {
    e.preventDefault();
    setErrors({});
    setBusy(true);
    const body: Record<string, unknown> = {
      name: values.name.trim(),
      description: values.description,
      privacy: values.privacy,
      type: values.type,
      invitations: values.invitations,
      members: splitNames(values.members),
      managers: splitNames(values.managers),
      presenters: splitNames(values.presenters),
    };
    try {
      if (editing) {
        if (room && String(room.category.id) !== values.category)
          body.category = Number(values.category);
        body.disabled = values.disabled;
        const r = await model.http<RoomView>('PATCH', `/rooms/${roomId}`, body);
        setRoom(r);
        setSaved(true);
        void model.reloadRoom(r.id);
      } else {
        body.category = Number(values.category);
        const r = await model.http<RoomView>('POST', '/rooms', body);
        navigate(model.roomPath(r.id));
      }
    } catch (err) {
      const e2 =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      const field = fieldOf(e2, values);
      setErrors({ [field ?? 'form']: errorText(e2.code, e2.message) });
    } finally {
      setBusy(false);
    }
  }

  function describe(f: Field) {
    return errors[f] ? `${f}-error` : undefined;
  }
  function err(f: Field) {
    return <FieldError field={f} text={errors[f]} />;
  }

  return (
    <section class="page" aria-labelledby="room-form-title">
      <h1 id="room-form-title">{editing ? `${t.edit}: ${room?.name ?? ''}` : t.newRoom}</h1>
      <form class="room-form" onSubmit={(e) => void submit(e)} noValidate>
        <label>
          {t.name}
          <input
            name="name"
            required
            maxLength={256}
            value={values.name}
            aria-invalid={!!errors.name}
            aria-describedby={describe('name')}
            onInput={(e) => set('name', e.currentTarget.value)}
          />
          {err('name')}
        </label>
        <label>
          {t.category}
          <select
            name="category"
            value={values.category}
            aria-invalid={!!errors.category}
            aria-describedby={describe('category')}
            onChange={(e) => set('category', e.currentTarget.value)}
          >
            {editing && room && !categories.some((c) => c.id === room.category.id) && (
              <option value={String(room.category.id)}>{room.category.name}</option>
            )}
            {categories.map((c) => (
              <option key={c.id} value={String(c.id)}>
                {c.name}
              </option>
            ))}
          </select>
          {err('category')}
        </label>
        <label>
          {t.description}
          <textarea
            name="description"
            maxLength={256}
            rows={2}
            value={values.description}
            aria-invalid={!!errors.description}
            aria-describedby={describe('description')}
            onInput={(e) => set('description', e.currentTarget.value)}
          />
          {err('description')}
        </label>
        <div class="row">
          <SelectField
            field="privacy"
            label={t.privacy}
            value={values.privacy}
            options={[
              ['open', t.open],
              ['closed', t.closed],
              ['secret', t.secret],
            ]}
            error={errors.privacy}
            onChange={(v) => set('privacy', v)}
          />
          <SelectField
            field="type"
            label={t.type}
            value={values.type}
            options={[
              ['normal', t.normal],
              ['auditorium', t.auditorium],
            ]}
            error={errors.type}
            onChange={(v) => set('type', v)}
          />
          <SelectField
            field="invitations"
            label={t.invitationsSetting}
            value={values.invitations}
            options={[
              ['inherit', t.inherit],
              ['off', t.off],
            ]}
            error={errors.invitations}
            onChange={(v) => set('invitations', v)}
          />
        </div>
        {lists.map((l) => (
          <label key={l}>
            {l === 'members' ? t.membersList : l === 'managers' ? t.managers : t.presenters}
            <input
              name={l}
              list="principal-suggestions"
              value={values[l]}
              aria-invalid={!!errors[l]}
              aria-describedby={errors[l] ? `${l}-error` : `${l}-hint`}
              onInput={(e) => {
                set(l, e.currentTarget.value);
                void lookup(e.currentTarget.value);
              }}
            />
            <span class="muted small" id={`${l}-hint`}>
              {t.namesHint}
            </span>
            {err(l)}
          </label>
        ))}
        <datalist id="principal-suggestions">
          {suggestions.map((p) => (
            <option key={p.id} value={p.name}>
              {p.displayName}
            </option>
          ))}
        </datalist>
        {editing && (
          <label class="check">
            <input
              type="checkbox"
              name="disabled"
              checked={values.disabled}
              onChange={(e) => set('disabled', e.currentTarget.checked)}
            />
            {t.disabled}
          </label>
        )}
        {errors.form && (
          <p class="form-error" role="alert" data-testid="form-error">
            {errors.form}
          </p>
        )}
        {saved && (
          <p class="ok" role="status">
            {t.saved}
          </p>
        )}
        <div class="card-actions">
          <button type="submit" class="primary" disabled={busy}>
            {editing ? t.save : t.create}
          </button>
          {editing && (
            <button
              type="button"
              class="secondary"
              onClick={() => navigate(model.roomPath(roomId))}
            >
              {t.back}
            </button>
          )}
        </div>
      </form>
    </section>
  );
}
