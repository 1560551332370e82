/**
 * The error catalogue. Every failure a client can see is one of these classes, with a stable
 * machine-readable `code` and the HTTP status the HTTP transport maps it to. The WebSocket
 * transport sends `{ type: 'error', code, message, details }` with the same code.
 */
export class PerchError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: string, status: number, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** Input failed schema validation; `details.issues` lists each problem with its path. */
export class ValidationError extends PerchError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_request', 400, message, details);
  }
}

export class MalformedFrameError extends PerchError {
  constructor(message = 'frame is not valid JSON') {
    super('malformed_frame', 400, message);
  }
}

export class UnknownFrameTypeError extends PerchError {
  constructor(type: string) {
    super('unknown_frame_type', 400, `unknown frame type ${JSON.stringify(type).slice(0, 80)}`);
  }
}

export class FrameTooLargeError extends PerchError {
  constructor(limit: number) {
    super('frame_too_large', 413, `frame exceeds ${limit} bytes`, { limit });
  }
}

export class MessageTooLargeError extends PerchError {
  constructor(limit: number) {
    super('message_too_large', 413, `message exceeds ${limit} characters`, { limit });
  }
}

export class UnauthenticatedError extends PerchError {
  constructor(message = 'authentication required') {
    super('unauthenticated', 401, message);
  }
}

export class InvalidCredentialsError extends PerchError {
  constructor() {
    super('invalid_credentials', 401, 'login or password is incorrect');
  }
}

export class TooManyAttemptsError extends PerchError {
  constructor(retryAfterSeconds: number) {
    super('too_many_attempts', 429, 'too many failed sign-ins; try again later', {
      retryAfterSeconds,
    });
  }
}

export class RateLimitedError extends PerchError {
  constructor(message = 'too many requests; slow down') {
    super('rate_limited', 429, message);
  }
}

export class AccountDisabledError extends PerchError {
  constructor() {
    super('account_disabled', 403, 'this account is disabled');
  }
}

export class ChatDisabledError extends PerchError {
  constructor() {
    super('chat_disabled', 403, 'persistent chat is not enabled for this user by policy');
  }
}

export class ForbiddenError extends PerchError {
  constructor(message = 'you are not allowed to do this') {
    super('forbidden', 403, message);
  }
}

export class AdminRequiredError extends PerchError {
  constructor() {
    super('admin_required', 403, 'this operation requires the chat administrator role');
  }
}

export class NotFoundError extends PerchError {
  constructor(code: string, message: string) {
    super(code, 404, message);
  }
}

export class RoomNotFoundError extends NotFoundError {
  constructor() {
    // A secret room the caller may not see answers exactly like a room that does not exist.
    super('room_not_found', 'room not found');
  }
}

export class CategoryNotFoundError extends NotFoundError {
  constructor() {
    super('category_not_found', 'category not found');
  }
}

export class PrincipalNotFoundError extends NotFoundError {
  constructor(name?: string) {
    super(
      'principal_not_found',
      name === undefined
        ? 'user or group not found'
        : `user or group ${JSON.stringify(name)} not found`,
    );
  }
}

export class FileNotFoundError extends NotFoundError {
  constructor() {
    super('file_not_found', 'file not found or link expired');
  }
}

export class InvitationNotFoundError extends NotFoundError {
  constructor() {
    super('invitation_not_found', 'invitation not found');
  }
}

export class ConflictError extends PerchError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, 409, message, details);
  }
}

export class NameTakenError extends ConflictError {
  constructor(name: string) {
    super('name_taken', `the name ${JSON.stringify(name)} is already used by a room or category`);
  }
}

export class CategoryNotEmptyError extends ConflictError {
  constructor(rooms: number) {
    super(
      'category_not_empty',
      `category still holds ${rooms} room(s); remove or move them first`,
      {
        rooms,
      },
    );
  }
}

/** A principal placed in a room role or category list is outside the category scope. */
export class OutOfScopeError extends PerchError {
  constructor(names: string[]) {
    super('principal_out_of_scope', 422, `not in the category scope: ${names.join(', ')}`, {
      principals: names,
    });
  }
}

/** A request that is well-formed but breaks a domain rule (e.g. presenters in a normal room). */
export class RuleViolationError extends PerchError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, 422, message, details);
  }
}

export class RoomDisabledError extends PerchError {
  constructor() {
    super('room_disabled', 403, 'room is disabled');
  }
}

export class NotJoinedError extends PerchError {
  constructor() {
    super('not_joined', 409, 'join the room first');
  }
}

export class PostNotAllowedError extends PerchError {
  constructor() {
    super('post_not_allowed', 403, 'only presenters may post in an auditorium room');
  }
}

export class FileUploadDisabledError extends PerchError {
  constructor() {
    super('file_upload_disabled', 403, "file upload is switched off in this room's category");
  }
}

export class FileTooLargeError extends PerchError {
  constructor(limitKb: number) {
    super('file_too_large', 413, `file exceeds the ${limitKb} KB limit`, { limitKb });
  }
}

export class InvalidCursorError extends PerchError {
  constructor(message: string) {
    super('invalid_cursor', 400, message);
  }
}

export class SlowConsumerError extends PerchError {
  constructor() {
    super('slow_consumer', 503, 'connection could not keep up with its events and was closed');
  }
}

export class ShuttingDownError extends PerchError {
  constructor() {
    super('shutting_down', 503, 'server is shutting down');
  }
}

/**
 * This front end is idle in its Enterprise Edition pool (not in the active set): it keeps the
 * connections it has but takes no new client sessions. `details.active` names the active front
 * ends and their URLs, so that a client moves on to one of them.
 */
export class FrontEndIdleError extends PerchError {
  constructor(frontEnd: string, active: { name: string; url: string }[]) {
    super(
      'front_end_idle',
      503,
      `front end ${JSON.stringify(frontEnd)} is idle; connect to an active one: ${
        active.map((a) => `${a.name} (${a.url})`).join(', ') || 'none is active'
      }`,
      { frontEnd, active },
    );
  }
}

/** No such pool, or this server is not a front end of an Enterprise Edition pool at all. */
export class PoolNotFoundError extends NotFoundError {
  constructor(name?: string) {
    super(
      'pool_not_found',
      name === undefined
        ? 'this server is not a front end of an Enterprise Edition pool'
        : `pool ${JSON.stringify(name)} not found`,
    );
  }
}

/**
 * A call forwarded from another pool (`Authorization: PerchPool ...`) whose assertion does not
 * hold: bad or stale signature, no pool-link secret published here, or a route that only a
 * signed-in session may call.
 */
export class PoolLinkRefusedError extends PerchError {
  constructor(message: string) {
    super('pool_link_refused', 401, message);
  }
}

/** A forwarded call names a user that this pool's directory does not have (or has disabled). */
export class PoolUserUnknownError extends PerchError {
  constructor(pool: string, login: string) {
    super(
      'pool_user_unknown',
      403,
      `user ${JSON.stringify(login)} is not in the directory of pool ${JSON.stringify(pool)}`,
      { pool, login },
    );
  }
}

/** No front end of another pool answered a forwarded call. */
export class PoolUnreachableError extends PerchError {
  constructor(pool: string, tried: string[]) {
    super(
      'pool_unreachable',
      502,
      `no front end of pool ${JSON.stringify(pool)} answered (${tried.join(', ') || 'none published'})`,
      { pool, tried },
    );
  }
}

/** An active set names a front end that never registered in the pool. */
export class FrontEndNotFoundError extends NotFoundError {
  constructor(pool: string, names: string[]) {
    super(
      'front_end_not_found',
      `no front end named ${names.map((n) => JSON.stringify(n)).join(', ')} has registered in pool ${JSON.stringify(pool)}`,
    );
  }
}

/** An active set larger than a pool allows (four, as in Lync). */
export class TooManyActiveServersError extends PerchError {
  constructor(limit: number, asked: number) {
    super(
      'too_many_active_servers',
      400,
      `at most ${limit} front ends may be active in a pool (${asked} given)`,
      { limit },
    );
  }
}

export class InternalError extends PerchError {
  constructor() {
    super('internal_error', 500, 'internal server error');
  }
}

/** Turns anything thrown into a PerchError; unknown errors become `internal_error`. */
export function toPerchError(err: unknown): PerchError {
  return err instanceof PerchError ? err : new InternalError();
}

export class PolicyNotFoundError extends NotFoundError {
  constructor(name: string) {
    super('policy_not_found', `no policy named ${JSON.stringify(name)}`);
  }
}

export class AddinNotFoundError extends NotFoundError {
  constructor() {
    super('addin_not_found', 'add-in not found');
  }
}

export class MessageNotFoundError extends NotFoundError {
  constructor() {
    super('message_not_found', 'message not found');
  }
}

export class TopicFeedNotFoundError extends NotFoundError {
  constructor() {
    super('feed_not_found', 'topic feed not found');
  }
}

export class TopicFeedNameTakenError extends ConflictError {
  constructor(name: string) {
    super('feed_name_taken', `you already have a topic feed named ${JSON.stringify(name)}`);
  }
}

/** A user keeps at most `limit` topic feeds. */
export class TooManyTopicFeedsError extends ConflictError {
  constructor(limit: number) {
    super('too_many_feeds', `at most ${limit} topic feeds per user`, { limit });
  }
}

/** The compliance worker does not run in this process (e.g. an app built without it). */
export class ComplianceUnavailableError extends PerchError {
  constructor(detail = 'the compliance worker is not running in this process') {
    super('compliance_unavailable', 503, detail);
  }
}

/** No eDiscovery export file of that name on this server. */
export class ExportNotFoundError extends NotFoundError {
  constructor() {
    super('export_not_found', 'no eDiscovery export of that name on this server');
  }
}

/** No active legal hold with that id (never placed, or already released). */
export class HoldNotFoundError extends NotFoundError {
  constructor(id: number) {
    super('hold_not_found', `no active legal hold ${id}`);
  }
}

/** A store named by a URL could not be reached or opened (a down server, a wrong address). */
export class StoreUnreachableError extends PerchError {
  constructor(store: string, detail: string) {
    super('store_unreachable', 503, `cannot reach the store ${store}: ${detail}`, { store });
  }
}

/**
 * `perch pool promote` was asked to promote a standby of a store whose nodes Patroni manages:
 * Patroni promotes by itself, and a promotion behind its back would fight it.
 */
export class StoreManagedByPatroniError extends PerchError {
  constructor(hosts: string[]) {
    super(
      'store_managed_by_patroni',
      409,
      `Patroni manages ${hosts.join(', ')}: it fails over by itself when the primary is lost; ` +
        'to move the primary by hand use `patronictl switchover` (a healthy primary) or ' +
        '`patronictl failover` (none), not perch pool promote',
      { hosts },
    );
  }
}

/** A store was migrated by a newer Perch: no downgrades. */
export class StoreTooNewError extends PerchError {
  constructor(store: string, unknown: string[]) {
    super(
      'store_too_new',
      409,
      `${store} was migrated by a newer Perch (migrations ${unknown.join(', ')}); upgrade Perch instead`,
      { store, unknown },
    );
  }
}

/** A topology file has problems; `details.problems` lists each with its place in the file. */
export class TopologyInvalidError extends PerchError {
  constructor(file: string, problems: { path: string; message: string; line?: number }[]) {
    super(
      'topology_invalid',
      400,
      `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
      { file, problems },
    );
  }
}

/** No topology was published in this store (`perch topology publish` first). */
export class TopologyNotPublishedError extends NotFoundError {
  constructor(store: string) {
    super('topology_not_published', `no topology is published in ${store}`);
  }
}

/** `perch serve --topology` names a host or front end that the topology does not have, or several. */
export class TopologyFrontEndError extends PerchError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('topology_front_end', 400, message, details);
  }
}

/** The LDAP directory could not be reached, bound to or searched; nothing was changed. */
export class DirectoryUnavailableError extends PerchError {
  constructor(detail: string) {
    super('directory_unavailable', 503, `the directory is unavailable: ${detail}`);
  }
}

/** No LDAP directory is configured (PERCH_DIRECTORY_FILE, or the topology pool's `directory`). */
export class DirectoryNotConfiguredError extends PerchError {
  constructor() {
    super(
      'directory_not_configured',
      409,
      'no directory is configured: set PERCH_DIRECTORY_FILE (see docs/operations/directory.md)',
    );
  }
}

/** A directory connection file is unreadable or invalid; `details.problems` lists what. */
export class DirectoryConfigError extends PerchError {
  constructor(file: string, problems: string[]) {
    super('directory_config_invalid', 400, `${file}: ${problems.join('; ')}`, { file, problems });
  }
}

/** A directory user's password, login or account state is the directory's to change. */
export class DirectoryManagedError extends PerchError {
  constructor(login: string, fields: string[]) {
    super(
      'directory_managed',
      409,
      `${login} comes from the directory: change ${fields.join(', ')} there`,
      { login, fields },
    );
  }
}

/**
 * The XMPP gateway closed a stream (RFC 6120 §4.9): `details.condition` is the stream error
 * condition sent to the client (`policy-violation`, `restricted-xml`, `not-well-formed`, ...).
 */
export class XmppStreamError extends PerchError {
  constructor(condition: string, message: string) {
    super('xmpp_stream_error', 400, message, { condition });
  }
}

/**
 * `perch pool failover|failback|state` on a pool the topology gives no backup site
 * (backupStore and backupSite), or a pool the topology does not have.
 */
export class PoolNoBackupSiteError extends PerchError {
  constructor(pool: string, why: string) {
    super('pool_no_backup_site', 400, `pool ${JSON.stringify(pool)}: ${why}`, { pool });
  }
}

/**
 * `perch pool failover` refused: the primary site still answers (a second primary would split
 * the pool), or the backup store is further behind than allowed. `details.reason` says which.
 */
export class PoolFailoverRefusedError extends PerchError {
  constructor(
    reason: 'primary_site_answers' | 'backup_behind' | 'backup_unreachable',
    message: string,
  ) {
    super('failover_refused', 409, message, { reason });
  }
}

/**
 * `perch pool failback` cannot go on yet: the original site is not a replica of the current
 * primary (rebuild it first, as the runbook says), or it did not catch up in time.
 */
export class PoolFailbackNotReadyError extends PerchError {
  constructor(message: string) {
    super('failback_not_ready', 409, message);
  }
}

/** `perch backup restore --from DIR`: DIR or its manifest.json is not there. */
export class BackupNotFoundError extends PerchError {
  constructor(dir: string, detail: string) {
    super('backup_not_found', 404, `no backup at ${dir}: ${detail}`, { dir });
  }
}

/** A backup's manifest.json is not one, or was changed after the backup was written. */
export class BackupManifestError extends PerchError {
  constructor(detail: string) {
    super('backup_manifest_invalid', 400, `the backup manifest is not valid: ${detail}`);
  }
}

/** A part of a backup does not match the size or SHA-256 its manifest records. */
export class BackupChecksumError extends PerchError {
  constructor(part: string, detail: string) {
    super('backup_checksum_mismatch', 400, `${part}: ${detail}; the backup is damaged`, { part });
  }
}

/** A backup is written only into a new or empty folder, and restored only into empty stores. */
export class BackupTargetNotEmptyError extends PerchError {
  constructor(target: string, detail: string) {
    super('backup_target_not_empty', 409, `${target} is not empty (${detail})`, { target });
  }
}

/** A backup cannot go where it was asked to (another dialect, a newer schema, no target given). */
export class BackupIncompatibleError extends PerchError {
  constructor(message: string) {
    super('backup_incompatible', 409, message);
  }
}

/** pg_dump or pg_restore is missing or failed, or a file vanished while it was being copied. */
export class BackupFailedError extends PerchError {
  constructor(message: string) {
    super('backup_failed', 500, message);
  }
}
