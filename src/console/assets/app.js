// The console's entry point: sign-in (user name and password; the session
// cookie is shared by every tab), the screens a role may see, hash routing,
// live events and keyboard shortcuts.

import { api, currentSession, signIn as startSession, signOut as endSession, setUnauthorizedHandler } from './api.js';
import { connectEvents } from './sse.js';
import { t, lang, setLang, applyStatic } from './i18n.js';
import { h, fill, toast } from './dom.js';
import { beep, badge, clearBadge, unlockAudio } from './notify.js';
import * as queueView from './view-queue.js';
import * as mineView from './view-mine.js';
import * as conversationView from './view-conversation.js';
import * as reportsView from './view-reports.js';
import * as broadcastsView from './view-broadcasts.js';
import * as usersView from './view-users.js';
import * as boardView from './view-board.js';
import * as searchView from './view-search.js';
import * as presence from './presence.js';
import { loadNames, loadAgents, queueName } from './names.js';

const $ = (id) => document.getElementById(id);

/** Which screens each group of roles sees. */
const ROLES = {
  desk: ['agent', 'supervisor', 'admin'],
  supervisor: ['supervisor', 'admin'],
  marketer: ['marketer', 'admin'],
  admin: ['admin'],
};

const ROUTES = {
  queue: { view: queueView, role: 'desk' },
  mine: { view: mineView, role: 'desk' },
  c: { view: conversationView, role: 'desk' },
  reports: { view: reportsView, role: 'supervisor' },
  broadcasts: { view: broadcastsView, role: 'marketer' },
  users: { view: usersView, role: 'admin' },
  board: { view: boardView, role: 'supervisor' },
  search: { view: searchView, role: 'desk' },
};

// `back`: the screen a conversation was opened from ("Kembali" returns there).
const state = { me: null, mounted: null, route: null, stopEvents: null, back: null };

function allowed(group) {
  return state.me && ROLES[group].includes(state.me.role);
}

function homeRoute() {
  if (allowed('desk')) return 'queue';
  if (allowed('marketer')) return 'broadcasts';
  if (allowed('supervisor')) return 'reports';
  return 'queue';
}

export function navigate(route) {
  const target = '#/' + route;
  if (location.hash === target) render();
  else location.hash = target;
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || homeRoute(), params: parts.slice(1) };
}

function render() {
  if (!state.me) return;
  const { name, params } = parseHash();
  const route = ROUTES[name];
  if (state.mounted) {
    state.mounted.unmount?.();
    state.mounted = null;
  }
  if (name !== 'c' && route) state.back = [name, ...params].map(encodeURIComponent).join('/');
  const back = state.back || homeRoute();
  const view = $('view');
  fill(view);
  for (const b of document.querySelectorAll('#nav button')) {
    const current = b.dataset.route === name || (name === 'c' && b.dataset.route === back.split('/')[0]);
    if (current) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  if (!route) {
    navigate(homeRoute());
    return;
  }
  if (!allowed(route.role)) {
    fill(view, h('p', { class: 'error', role: 'alert' }, t('error.forbidden')));
    return;
  }
  state.route = name;
  if (name === 'queue') clearBadge();
  if (name === 'search') $('search').value = params[0] || '';
  state.mounted = route.view.mount(view, { me: state.me, navigate, back }, params);
}

function onEvent(ev) {
  const me = state.me;
  if (ev.type === 'handoff' && allowed('desk') && (!me.queues.length || me.queues.includes(ev.queue))) {
    beep();
    if (document.hidden || state.route !== 'queue') badge();
    if (state.route !== 'queue') toast(t('queue.newHandoff', { queue: queueName(ev.queue) }));
  }
  presence.onEvent(ev);
  state.mounted?.onEvent?.(ev);
}

function setLive(connected) {
  const live = $('live');
  live.hidden = false;
  live.dataset.connected = String(connected);
  live.textContent = connected ? t('live.on') : t('live.off');
}

/** Shows the console for the signed-in user (the session cookie is set). */
async function enter() {
  state.me = await api('/me');
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('account').hidden = false;
  fill($('who'), state.me.name, ' · ', t('role.' + state.me.role));
  await loadNames();
  if (allowed('desk')) await loadAgents().catch(() => {});
  for (const b of document.querySelectorAll('#nav button')) b.hidden = !allowed(b.dataset.role);
  $('search-form').hidden = !allowed('desk');
  $('presence-wrap').hidden = true;
  if (allowed('desk')) {
    presence.start(state.me, $('presence')).then((ok) => { $('presence-wrap').hidden = !ok; });
  }
  state.stopEvents?.();
  state.stopEvents = null;
  // Live events carry customer messages: only the desk roles receive them.
  if (allowed('desk')) state.stopEvents = connectEvents(onEvent, setLive);
  else $('live').hidden = true;
  render();
}

/** Back to the sign-in form (the session is already gone or being ended). */
function leave() {
  presence.stop();
  state.back = null;
  $('search-form').hidden = true;
  $('presence-wrap').hidden = true;
  state.stopEvents?.();
  state.stopEvents = null;
  state.mounted?.unmount?.();
  state.mounted = null;
  state.me = null;
  clearBadge();
  fill($('view'));
  fill($('who'));
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('account').hidden = true;
  $('live').hidden = true;
  $('signin').hidden = false;
  $('password').value = '';
  $('username').focus();
}

async function signOut() {
  await presence.signOff();
  try {
    await endSession();
  } catch {
    // Signed out or unreachable: the form is shown either way.
  }
  leave();
}

async function changeOwnPassword(e) {
  e.preventDefault();
  const error = $('account-error');
  error.textContent = '';
  const body = { password: $('new-password').value };
  if ($('current-password').value) body.current_password = $('current-password').value;
  try {
    await api(`/users/${encodeURIComponent(state.me.id)}/password`, { method: 'POST', body });
  } catch (err) {
    error.textContent = err.code === 'wrong_password' ? t('account.wrong') : err.message;
    return;
  }
  $('account-form').reset();
  $('account-dialog').close();
  toast(t('account.changed'));
}

function showHelp() {
  const keys = [
    ['1 / 2 / 3 / 4 / 5 / 6', t('keys.screens')],
    ['/', t('keys.search')],
    ['n', t('keys.claim')],
    ['r', t('keys.reply')],
    ['Enter', t('keys.send')],
    ['Esc', t('keys.back')],
    ['?', t('keys.help')],
  ];
  fill($('help-list'), keys.map(([k, d]) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, d)]));
  $('help').showModal();
}

function typing(el) {
  return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}

function onKey(e) {
  // An open dialog (help, the picture viewer) has the keyboard: Escape closes it.
  if (!state.me || e.ctrlKey || e.metaKey || e.altKey || typing(e.target) || document.querySelector('dialog[open]')) return;
  const screens = { 1: 'queue', 2: 'mine', 3: 'reports', 4: 'broadcasts', 5: 'users', 6: 'board' };
  const screen = ROUTES[screens[e.key]];
  if (screen && allowed(screen.role)) {
    e.preventDefault();
    navigate(screens[e.key]);
  } else if (e.key === '/' && !$('search-form').hidden) {
    e.preventDefault();
    $('search').focus();
  } else if (e.key === '?') {
    e.preventDefault();
    showHelp();
  } else if (state.mounted?.onKey?.(e)) {
    e.preventDefault();
  } else if (e.key === 'n' && allowed('desk')) {
    e.preventDefault();
    queueView.claim(navigate);
  }
}

function init() {
  setLang(lang());
  $('lang').value = lang();
  applyStatic();
  $('search').placeholder = t('search.placeholder');
  $('lang').addEventListener('change', (e) => {
    setLang(e.target.value);
    applyStatic();
    $('search').placeholder = t('search.placeholder');
    if (state.me) {
      fill($('who'), state.me.name, ' · ', t('role.' + state.me.role));
      render();
    }
  });
  for (const b of document.querySelectorAll('#nav button')) {
    b.addEventListener('click', () => navigate(b.dataset.route));
  }
  $('signout').addEventListener('click', signOut);
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = $('search').value.trim();
    if (q) navigate('search/' + encodeURIComponent(q));
  });
  $('account').addEventListener('click', () => {
    $('account-error').textContent = '';
    $('account-dialog').showModal();
  });
  $('account-cancel').addEventListener('click', () => $('account-dialog').close());
  $('account-form').addEventListener('submit', changeOwnPassword);
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    unlockAudio();
    $('signin-error').textContent = '';
    try {
      await startSession($('username').value.trim(), $('password').value);
      $('password').value = '';
      await enter();
    } catch (err) {
      $('signin-error').textContent =
        err.status === 401 ? t('signin.bad') : err.status === 429 ? t('signin.limited') : err.message;
    }
  });
  // Browsers only allow sound after a user gesture; any click or key unlocks it.
  document.addEventListener('pointerdown', unlockAudio, { passive: true });
  document.addEventListener('keydown', unlockAudio);
  document.addEventListener('keydown', onKey);
  window.addEventListener('hashchange', render);
  const seen = () => {
    if (!document.hidden && state.route === 'queue') clearBadge();
  };
  document.addEventListener('visibilitychange', seen);
  window.addEventListener('focus', seen);
  setUnauthorizedHandler(() => {
    if (state.me) {
      toast(t('signin.ended'), 'error');
      leave();
    }
  });

  // Another tab may already have signed this browser in.
  currentSession()
    .then((s) => (s ? enter() : leave()))
    .catch(() => leave());
}

init();
