// Access management (SPEC §6.1, §6.2, §7.3): the public face of receiver/src/access/.
// SQL and rules only — no HTTP (api/keys.ts and api/projects.ts are the routes).
//
//   api-keys.ts   list / create / rotate / revoke the caller's project's keys
//   projects.ts   projects a caller may manage; create (first key + owner), update
//   members.ts    members, invitations, role changes, removal, ownership transfer
//   grants.ts     "never above your own": scopes a key may get, roles a caller may grant
//   change.ts     one transaction per change, with its audit row inside it
//   input.ts      body validation → 422 with loc
export { type AccessDeps, type ChangeContext } from './change.js';
export { actingRole, assertCanGrantScopes, isRole } from './grants.js';
export {
  createKey, getApiKey, listApiKeys, revokeKey, rotateKey, DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, type ApiKeyRow,
} from './api-keys.js';
export { createProject, getProject, listProjects, slugFromName, updateProject, type ProjectRow } from './projects.js';
export {
  changeRole, getMember, inviteMember, listMembers, removeMember, transferOwnership, INVITATION_TTL_SECONDS, type MemberRow,
} from './members.js';
export * as input from './input.js';
