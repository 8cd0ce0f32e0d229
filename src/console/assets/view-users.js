// Users, for admins: the list, adding a user, editing name / role / queues /
// capacity, disabling and enabling, setting a password, and issuing and
// revoking API tokens (a new token is shown once, here, and never again).

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, attempt, toast, dateTime } from './dom.js';
import { queueName } from './names.js';

const ROLE_NAMES = ['agent', 'supervisor', 'marketer', 'admin'];

export function mount(root) {
  const list = h('div', { class: 'users' });
  const secret = h('div', { class: 'secret', role: 'status', 'aria-live': 'polite', hidden: true });
  const load = async () => {
    const res = await attempt(() => api('/users'));
    if (res) drawList(list, res.users, { reload: load, showSecret });
  };
  const showSecret = (label, value) => {
    fill(secret,
      h('p', {}, h('strong', {}, label)),
      h('code', { class: 'secret-value', tabindex: '0' }, value),
      h('p', { class: 'hint' }, t('users.tokenOnce')),
      h('button', { type: 'button', onclick: () => { secret.hidden = true; fill(secret); } }, t('close')));
    secret.hidden = false;
    secret.querySelector('code').focus();
  };
  root.append(
    h('div', { class: 'toolbar' }, h('h1', {}, t('users.title'))),
    secret,
    list,
    h('details', { class: 'create', open: true }, h('summary', {}, t('users.new')), createForm(load)),
  );
  load();
  return {};
}

let seq = 0;
function field(label, input, hint) {
  const id = input.id || `u${++seq}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

function roleSelect(value) {
  return h('select', {}, ROLE_NAMES.map((r) => h('option', { value: r, selected: r === value }, t('role.' + r))));
}

function queueList(text) {
  return text.split(',').map((q) => q.trim()).filter(Boolean);
}

function drawList(list, users, ctx) {
  if (!users.length) {
    fill(list, h('p', { class: 'empty' }, t('users.empty')));
    return;
  }
  fill(list, h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('users.id')),
      h('th', { scope: 'col' }, t('users.role')),
      h('th', { scope: 'col' }, t('users.queues')),
      h('th', { scope: 'col' }, t('users.status')),
      h('th', { scope: 'col' }, t('users.tokens')),
      h('th', { scope: 'col' }, h('span', { class: 'sr' }, t('conv.actions'))))),
    h('tbody', {}, users.map((u) => userRow(u, ctx))))));
}

function userRow(u, ctx) {
  const editor = h('div', { class: 'user-editor', hidden: true });
  const toggle = async () => {
    const res = await attempt(() => api(`/users/${encodeURIComponent(u.id)}`, { method: 'PATCH', body: { disabled: !u.disabled } }));
    if (res) {
      toast(t(res.disabled ? 'users.disabledNow' : 'users.enabledNow', { id: u.id }));
      ctx.reload();
    }
  };
  const revoke = (tok) => async () => {
    if (!confirm(t('users.confirmRevoke', { id: u.id, label: tok.label || tok.id }))) return;
    const res = await attempt(() => api(`/users/${encodeURIComponent(u.id)}/tokens/${encodeURIComponent(tok.id)}`, { method: 'DELETE' }));
    if (res === null) {
      toast(t('users.revoked'));
      ctx.reload();
    }
  };
  const open = (form) => () => {
    fill(editor, form);
    editor.hidden = false;
    editor.querySelector('input, select')?.focus();
  };
  const close = () => {
    editor.hidden = true;
    fill(editor);
  };
  return [
    h('tr', { 'data-user': u.id, class: u.disabled ? 'disabled' : null },
      h('th', { scope: 'row' }, u.name, h('small', {}, u.id)),
      h('td', {}, t('role.' + u.role)),
      h('td', {}, u.queues.length ? u.queues.map(queueName).join(', ') : t('users.allQueues'), h('small', {}, t('users.max', { n: u.max_concurrent }))),
      h('td', {},
        h('span', { class: 'badge' + (u.disabled ? ' prio' : '') }, t(u.disabled ? 'users.disabled' : 'users.enabled')),
        u.has_password ? null : h('small', {}, t('users.noPassword'))),
      h('td', {}, u.tokens.length
        ? h('ul', { class: 'tokens' }, u.tokens.map((tok) => h('li', {},
          `${tok.label || tok.id} `, h('small', {}, dateTime(tok.created_ms)), ' ',
          h('button', { type: 'button', class: 'link', onclick: revoke(tok), 'aria-label': t('users.revokeLabel', { label: tok.label || tok.id }) }, t('users.revoke')))))
        : '–'),
      h('td', {}, h('div', { class: 'row-actions' },
        h('button', { type: 'button', onclick: open(editForm(u, close, ctx.reload)) }, t('users.edit')),
        h('button', { type: 'button', onclick: open(passwordForm(u, close)) }, t('users.setPassword')),
        h('button', { type: 'button', onclick: open(tokenForm(u, close, ctx)) }, t('users.issueToken')),
        h('button', { type: 'button', class: u.disabled ? null : 'danger', onclick: toggle }, t(u.disabled ? 'users.enable' : 'users.disable'))))),
    h('tr', { class: 'editor-row' }, h('td', { colspan: '6' }, editor)),
  ];
}

function editForm(u, close, reload) {
  const name = h('input', { value: u.name, required: true, maxlength: '100' });
  const role = roleSelect(u.role);
  const queues = h('input', { value: u.queues.join(', ') });
  const max = h('input', { type: 'number', min: '1', max: '100', value: String(u.max_concurrent) });
  const error = h('p', { class: 'error', role: 'alert' });
  return h('form', {
    class: 'user-form',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        await api(`/users/${encodeURIComponent(u.id)}`, {
          method: 'PATCH',
          body: { name: name.value.trim(), role: role.value, queues: queueList(queues.value), max_concurrent: Number(max.value) },
        });
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      toast(t('users.saved'));
      close();
      reload();
    },
  },
  h('div', { class: 'grid' },
    field(t('users.name'), name), field(t('users.role'), role),
    field(t('users.queues'), queues, t('users.queuesHint')), field(t('users.maxConcurrent'), max)),
  error,
  h('div', { class: 'row-actions' },
    h('button', { type: 'submit', class: 'primary' }, t('save')),
    h('button', { type: 'button', onclick: close }, t('cancel'))));
}

function tokenForm(u, close, ctx) {
  const label = h('input', { maxlength: '100', placeholder: t('users.tokenPlaceholder') });
  const error = h('p', { class: 'error', role: 'alert' });
  return h('form', {
    class: 'user-form',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      let res;
      try {
        res = await api(`/users/${encodeURIComponent(u.id)}/tokens`, { method: 'POST', body: { label: label.value.trim() } });
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      close();
      ctx.showSecret(t('users.newToken', { id: u.id }), res.token);
      ctx.reload();
    },
  },
  field(t('users.tokenLabel'), label),
  error,
  h('div', { class: 'row-actions' },
    h('button', { type: 'submit', class: 'primary' }, t('users.issue')),
    h('button', { type: 'button', onclick: close }, t('cancel'))));
}

function passwordForm(u, close) {
  const password = h('input', { type: 'password', autocomplete: 'new-password', minlength: '10', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  return h('form', {
    class: 'user-form',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        await api(`/users/${encodeURIComponent(u.id)}/password`, { method: 'POST', body: { password: password.value } });
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      toast(t('users.passwordSet', { id: u.id }));
      close();
    },
  },
  field(t('users.newPassword', { id: u.id }), password, t('users.passwordHint')),
  error,
  h('div', { class: 'row-actions' },
    h('button', { type: 'submit', class: 'primary' }, t('save')),
    h('button', { type: 'button', onclick: close }, t('cancel'))));
}

function createForm(onCreated) {
  const id = h('input', { required: true, maxlength: '64', pattern: '[A-Za-z0-9._\\-]+', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const name = h('input', { required: true, maxlength: '100' });
  const role = roleSelect('agent');
  const queues = h('input', {});
  const max = h('input', { type: 'number', min: '1', max: '100', value: '5' });
  max.defaultValue = '5'; // what form.reset() returns to
  const password = h('input', { type: 'password', autocomplete: 'new-password', minlength: '10' });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', {
    class: 'user-form',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      const body = {
        id: id.value.trim(), name: name.value.trim(), role: role.value,
        queues: queueList(queues.value), max_concurrent: Number(max.value),
      };
      if (password.value) body.password = password.value;
      try {
        await api('/users', { method: 'POST', body });
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      toast(t('users.created', { id: body.id }));
      form.reset();
      onCreated();
    },
  },
  h('div', { class: 'grid' },
    field(t('users.id'), id, t('users.idHint')), field(t('users.name'), name),
    field(t('users.role'), role), field(t('users.queues'), queues, t('users.queuesHint')),
    field(t('users.maxConcurrent'), max), field(t('users.password'), password, t('users.passwordHint'))),
  error,
  h('button', { type: 'submit', class: 'primary' }, t('users.add')));
  return form;
}
