// Every page and form of the dashboard, declared once. `user` routes pass the session gate
// (and, for POST, the session CSRF check); `public` routes are the sign-in flow.
import type { Route } from './app.js';
import { accountPage, mfaBackupCodes, mfaDisable, mfaEnable, mfaSetup, passwordPage, passwordSubmit } from './pages/account.js';
import { agentsPage } from './pages/agents.js';
import { auditPage, auditVerify } from './pages/audit.js';
import { budgetsPage } from './pages/budgets.js';
import { haltCreate, haltResolve, haltsPage } from './pages/halts.js';
import { keyCreate, keyRevoke, keyRotate, keysPage } from './pages/keys.js';
import { loginPage, loginSubmit, logoutSubmit, mfaPage, mfaSubmit, registerPage, registerSubmit } from './pages/login.js';
import { memberInvite, memberRemove, memberRole, membersPage } from './pages/members.js';
import { overviewPage } from './pages/overview.js';
import { policiesPage, policyEnabled, policySimulate } from './pages/policies.js';
import { projectsPage, projectsSubmit } from './pages/projects.js';
import { tracePage } from './pages/trace.js';
import { tracesPage } from './pages/traces.js';
import { deliveryRetry, webhookAction, webhookCreate, webhookPage, webhooksPage } from './pages/webhooks.js';
import { workersPage } from './pages/workers.js';

export const routes: Route[] = [
  { method: 'GET', path: '/login', auth: 'public', handler: loginPage },
  { method: 'POST', path: '/login', auth: 'public', handler: loginSubmit },
  { method: 'GET', path: '/login/mfa', auth: 'public', handler: mfaPage },
  { method: 'POST', path: '/login/mfa', auth: 'public', handler: mfaSubmit },
  { method: 'GET', path: '/register', auth: 'public', handler: registerPage },
  { method: 'POST', path: '/register', auth: 'public', handler: registerSubmit },
  { method: 'POST', path: '/logout', auth: 'public', handler: logoutSubmit },
  { method: 'GET', path: '/projects', auth: 'public', handler: projectsPage },
  { method: 'POST', path: '/projects', auth: 'public', handler: projectsSubmit },

  { method: 'GET', path: '/', auth: 'user', handler: overviewPage },
  { method: 'GET', path: '/traces', auth: 'user', handler: tracesPage },
  { method: 'GET', path: '/traces/:id', auth: 'user', handler: tracePage },
  { method: 'GET', path: '/agents', auth: 'user', handler: agentsPage },
  { method: 'GET', path: '/budgets', auth: 'user', handler: budgetsPage },
  { method: 'GET', path: '/halts', auth: 'user', handler: haltsPage },
  { method: 'POST', path: '/halts', auth: 'user', handler: haltCreate },
  { method: 'POST', path: '/halts/:id/resolve', auth: 'user', handler: haltResolve },
  { method: 'GET', path: '/policies', auth: 'user', handler: policiesPage },
  { method: 'POST', path: '/policies/simulate', auth: 'user', handler: policySimulate },
  { method: 'POST', path: '/policies/:id/enabled', auth: 'user', handler: policyEnabled },
  { method: 'GET', path: '/keys', auth: 'user', handler: keysPage },
  { method: 'POST', path: '/keys', auth: 'user', handler: keyCreate },
  { method: 'POST', path: '/keys/:id/rotate', auth: 'user', handler: keyRotate },
  { method: 'POST', path: '/keys/:id/revoke', auth: 'user', handler: keyRevoke },
  { method: 'GET', path: '/webhooks', auth: 'user', handler: webhooksPage },
  { method: 'POST', path: '/webhooks', auth: 'user', handler: webhookCreate },
  { method: 'GET', path: '/webhooks/:id', auth: 'user', handler: webhookPage },
  { method: 'POST', path: '/webhooks/:id/deliveries/:delivery/retry', auth: 'user', handler: deliveryRetry },
  { method: 'POST', path: '/webhooks/:id/:action', auth: 'user', handler: webhookAction },
  { method: 'GET', path: '/audit', auth: 'user', handler: auditPage },
  { method: 'POST', path: '/audit/verify', auth: 'user', handler: auditVerify },
  { method: 'GET', path: '/members', auth: 'user', handler: membersPage },
  { method: 'POST', path: '/members/invite', auth: 'user', handler: memberInvite },
  { method: 'POST', path: '/members/:id/role', auth: 'user', handler: memberRole },
  { method: 'POST', path: '/members/:id/remove', auth: 'user', handler: memberRemove },
  { method: 'GET', path: '/workers', auth: 'user', handler: workersPage },
  { method: 'GET', path: '/account', auth: 'user', handler: accountPage },
  { method: 'POST', path: '/account/mfa/setup', auth: 'user', handler: mfaSetup },
  { method: 'POST', path: '/account/mfa/enable', auth: 'user', handler: mfaEnable },
  { method: 'POST', path: '/account/mfa/disable', auth: 'user', handler: mfaDisable },
  { method: 'POST', path: '/account/mfa/backup-codes', auth: 'user', handler: mfaBackupCodes },
  { method: 'GET', path: '/account/password', auth: 'user', handler: passwordPage, duringPasswordChange: true },
  { method: 'POST', path: '/account/password', auth: 'user', handler: passwordSubmit, duringPasswordChange: true },
];
