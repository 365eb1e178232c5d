"""The one schema, as SQLAlchemy metadata. Alembic migrations are written against it.

Indexed columns hold what queries filter and sort on; the rest of a message is its JSON
document (``doc``), which is also its Graph wire form.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# SQLite makes an INTEGER PRIMARY KEY the rowid; PostgreSQL gets a BIGINT identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("domain", String(255), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("mail", String(320), nullable=False),
    Column("mail_lower", String(320), nullable=False, unique=True),
    Column("upn", String(320), nullable=False),
    Column("upn_lower", String(320), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    # argon2id hash of the user's password (the token endpoint's password grant, the sign-in
    # page); NULL: the user cannot sign in with a password
    Column("password_hash", String(255), nullable=True),
)

apps = Table(
    "apps",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # SHA-256 (hex) of the client secret; NULL for a public client (no secret)
    Column("secret_digest", String(64), nullable=True),
    # application roles granted to the app (space-separated), e.g. "Mail.ReadWrite Mail.Send"
    Column("roles", Text, nullable=True),  # NULL: none
    # redirect URIs (space-separated) accepted by /authorize
    Column("redirect_uris", Text, nullable=True),  # NULL: none
    Column("public_client", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("tenant_id", "name", name="uq_apps_tenant_name"),
)

folders = Table(
    "folders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", String(64), ForeignKey("folders.id", ondelete="CASCADE"), nullable=True),
    Column("display_name", String(255), nullable=False),
    Column("name_lower", String(255), nullable=False),
    Column("well_known", String(64), nullable=True),
    Column("is_hidden", Boolean, nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("unread_count", Integer, nullable=False),
    Column("child_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("mailbox_id", "well_known", name="uq_folders_well_known"),
    Index("ix_folders_parent_name", "parent_id", "name_lower", unique=True),
    Index("ix_folders_mailbox", "mailbox_id"),
)

# a mailSearchFolder's definition, beside its folders row: a saved $filter over messages
# (evaluated live, never materialised), the folders it looks in (a JSON array of ids), and
# whether their subfolders count too
search_folders = Table(
    "mail_search_folders",
    metadata,
    Column("folder_id", String(64), ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True),
    Column("filter_query", Text, nullable=False),
    Column("source_ids", Text, nullable=False),
    Column("include_nested", Boolean, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("folder_id", String(64), ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("is_read", Boolean, nullable=False),
    Column("is_draft", Boolean, nullable=False),
    Column("has_attachments", Boolean, nullable=False),
    Column("importance", String(16), nullable=False),
    Column("inference", String(16), nullable=False),
    Column("flag_status", String(16), nullable=False),
    Column("subject", Text, nullable=True),
    Column("body_preview", Text, nullable=False),
    Column("from_name", Text, nullable=True),
    Column("from_address", Text, nullable=True),
    Column("sender_name", Text, nullable=True),
    Column("sender_address", Text, nullable=True),
    Column("internet_message_id", Text, nullable=False),
    Column("conversation_id", String(64), nullable=False),
    Column("change_key", String(64), nullable=False),
    Column("doc", LargeBinary, nullable=False),
    Column("headers", LargeBinary, nullable=True),
    Index("ix_messages_folder_received", "folder_id", "received_at", "seq"),
    Index("ix_messages_mailbox_received", "mailbox_id", "received_at", "seq"),
    Index("ix_messages_imid", "mailbox_id", "internet_message_id"),
    Index("ix_messages_conversation", "mailbox_id", "conversation_id"),
    # Focused Inbox: a folder's focused (or other) messages, newest first
    Index("ix_messages_folder_inference", "folder_id", "inference", "received_at", "seq"),
    # a search's hits (found by their seq) are checked and sorted from this index alone,
    # not from their rows (on SQLite a row is a few KB over its own pages)
    Index("ix_messages_seq_cover", "seq", "mailbox_id", "received_at"),
)

# One row per recipient, so that toRecipients/any(...) is an indexed EXISTS.
recipients = Table(
    "message_recipients",
    metadata,
    Column("message_seq", SeqType, ForeignKey("messages.seq", ondelete="CASCADE"), nullable=False),
    Column("kind", String(4), nullable=False),  # to, cc, bcc, rt (replyTo)
    Column("name", Text, nullable=True),
    Column("address", Text, nullable=True),
    Index("ix_recipients_message", "message_seq", "kind"),
)

categories = Table(
    "message_categories",
    metadata,
    Column("message_seq", SeqType, ForeignKey("messages.seq", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Index("ix_categories_message", "message_seq"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("message_seq", SeqType, ForeignKey("messages.seq", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("is_inline", Boolean, nullable=False),
    Column("content_id", Text, nullable=True),
    Column("modified_at", BigInteger, nullable=False),
    # the bytes (a file's, or the item's or link's JSON): a content-addressed blob (SHA-256,
    # hex), counted in blobs.refs
    Column("blob_digest", String(64), ForeignKey("blobs.digest"), nullable=False),
    # file, item or reference: what the blob holds (the bytes, or the item's or link's JSON)
    Column("kind", String(16), nullable=False, server_default="file"),
    Index("ix_attachments_message", "message_seq", "position"),
    Index("ix_attachments_blob", "blob_digest"),
)

# ---------------------------------------------------------------- blobs (content-addressed)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the bytes, hex
    Column("size", BigInteger, nullable=False),
    # attachments using it; a blob at 0 is removed by the sweep (store/blobs.py)
    Column("refs", BigInteger, nullable=False),
    # the key of its rows in blob_chunks; NULL: a file named by the digest in GRAPHPOST_BLOB_DIR
    Column("location", String(80), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_blobs_unreferenced", "refs"),
)

blob_chunks = Table(
    "blob_chunks",
    metadata,
    Column("location", String(80), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False),  # SHA-256 of the URL's authtoken
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(80), nullable=False),
    Column("app_id", String(36), nullable=False),  # for throttling the PUTs
    Column("name", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("is_inline", Boolean, nullable=False),
    Column("content_id", Text, nullable=True),
    Column("received", BigInteger, nullable=False),  # bytes taken so far
    Column("parts", Integer, nullable=False),  # staged parts so far
    Column("expires_at", BigInteger, nullable=False),  # epoch ms, fixed at creation
    Column("created_at", BigInteger, nullable=False),
    Index("ix_upload_sessions_expiry", "expires_at"),
)

extensions = Table(
    "message_extensions",
    metadata,
    Column("message_seq", SeqType, ForeignKey("messages.seq", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("doc", LargeBinary, nullable=False),
    UniqueConstraint("message_seq", "name", name="uq_extensions_message_name"),
)

# MAPI extended properties: one row each, so that singleValueExtendedProperties/any(...) is an
# EXISTS over (message_seq, prop_id). prop_id is canonical (domain/extended.py); value is the
# string, or a multi-value property's values as a JSON array. Not indexed on value: a value
# may be longer than a PostgreSQL b-tree entry, and values compare without regard to case.
extended_props = Table(
    "message_extended_props",
    metadata,
    Column("message_seq", SeqType, ForeignKey("messages.seq", ondelete="CASCADE"), nullable=False),
    Column("prop_id", Text, nullable=False),
    Column("multi", Boolean, nullable=False),
    Column("value", Text, nullable=False),
    UniqueConstraint("message_seq", "prop_id", name="uq_extended_props_message_id"),
    Index("ix_extended_props_id", "prop_id"),
)

# ---------------------------------------------------------------- sending (transactional outbox)

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(64), nullable=False),  # the Sent Items copy (same id as draft)
    Column("internet_message_id", Text, nullable=False),
    Column("subject", Text, nullable=True),
    Column("envelope_from", Text, nullable=False),
    Column("sender_name", Text, nullable=True),
    Column("mime", LargeBinary, nullable=False),  # frozen at submission: what goes out
    Column("size", BigInteger, nullable=False),
    Column("saved", Boolean, nullable=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),  # retries stop here
    # a large message: the whole MIME is this blob (``mime`` is its skeleton), and
    # ``blobs_held`` the digests of its attachments (space-separated), each referenced once
    # until every delivery is final; both are released then (and set NULL)
    Column("mime_digest", String(64), nullable=True),
    Column("blobs_held", Text, nullable=True),
    UniqueConstraint("mailbox_id", "idempotency_key", name="uq_submissions_idempotency"),
    Index("ix_submissions_message", "mailbox_id", "message_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column(
        "submission_id",
        String(40),
        ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("recipient", Text, nullable=False),
    Column("transport", String(8), nullable=False),  # local, smtp
    Column("local_mailbox_id", String(36), nullable=True),
    Column("state", String(12), nullable=False),  # queued, deferred, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("last_code", Integer, nullable=True),
    Column("last_enhanced", String(16), nullable=True),
    Column("last_response", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("done_ms", BigInteger, nullable=True),
    Index("ix_deliveries_due", "state", "next_attempt_ms"),
    Index("ix_deliveries_state_seq", "state", "seq"),  # the queue view, newest first
    Index("ix_deliveries_submission", "submission_id"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column(
        "delivery_seq", SeqType, ForeignKey("deliveries.seq", ondelete="CASCADE"), nullable=False
    ),
    Column("at_ms", BigInteger, nullable=False),
    Column("outcome", String(12), nullable=False),
    Column("code", Integer, nullable=True),
    Column("enhanced", String(16), nullable=True),
    Column("response", Text, nullable=True),
    Index("ix_attempts_delivery", "delivery_seq"),
)

# ---------------------------------------------------------------- throttling (shared on PostgreSQL)

throttle_counts = Table(
    "throttle_counts",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

throttle_inflight = Table(
    "throttle_inflight",
    metadata,
    Column("key", String(120), nullable=False),
    Column("token", String(40), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_throttle_inflight_key", "key", "expires_ms"),
)

# ---------------------------------------------------------------- identity platform

# authorization codes, device codes and refresh tokens: one row each, looked up by the
# SHA-256 (hex) of the value handed out (the value itself is never stored)
identity_grants = Table(
    "identity_grants",
    metadata,
    Column("handle", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "code" | "device" | "refresh"
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("scopes", Text, nullable=False),
    Column("data", Text, nullable=False),  # JSON: PKCE, redirect, state
    Column("user_code", String(16), nullable=True, unique=True),  # device flow: typed by a person
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_identity_grants_expires", "expires_at"),
    # the live device codes of a client (capped per client)
    Index("ix_identity_grants_client", "client_id", "kind", "expires_at"),
)

# failed sign-ins and client authentications, counted per key ("client:ID", "user:ID") in a
# sliding window so that repeated failures are slowed on every process
identity_failures = Table(
    "identity_failures",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("key", String(120), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_identity_failures_key", "key", "at_ms"),
)

# ---------------------------------------------------------------- permissions

# mailbox delegation: ``delegate_id`` may use ``mailbox_id`` through the .Shared scopes
mailbox_grants = Table(
    "mailbox_grants",
    metadata,
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("delegate_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # space-separated: "read", "readwrite", "send_on_behalf", "send_as"
    Column("rights", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# application access policy: an app with a row in app_access_restrictions may open only the
# mailboxes listed for it in app_access_policies (none, once every listed user is removed)
app_access_restrictions = Table(
    "app_access_restrictions",
    metadata,
    Column("app_id", String(36), ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

app_access_policies = Table(
    "app_access_policies",
    metadata,
    Column("app_id", String(36), ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

# Change notification subscriptions (POST /subscriptions). ``cursor``: the last change of the
# mailbox's change log the dispatcher has turned into notifications; ``change_seq`` and
# ``life_seq``: the last sequence number given to a change and to a lifecycle notification.
# The lease makes one worker at a time dispatch and deliver a subscription's notifications.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("app_id", String(64), nullable=False),
    Column("creator_id", String(64), nullable=False),
    Column("delegated", Boolean, nullable=False),
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("resource", Text, nullable=False),
    Column("kind", String(8), nullable=False),  # message, folder
    Column("folder_id", String(64), nullable=True),  # messages of one folder; NULL: all
    Column("change_types", String(32), nullable=False),
    Column("notification_url", Text, nullable=False),
    Column("lifecycle_url", Text, nullable=True),
    Column("client_state", Text, nullable=True),
    Column("tls_version", String(8), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("reauth_ms", BigInteger, nullable=True),  # when reauthorizationRequired is due
    Column("removed_ms", BigInteger, nullable=True),  # removed: only lifecycle rows go out
    Column("cursor", BigInteger, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("life_seq", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Index("ix_subscriptions_mailbox", "mailbox_id"),
    Index("ix_subscriptions_app", "tenant_id", "app_id"),
)

# Notifications not yet delivered, per subscription and channel (c: change, to the
# notificationUrl; l: lifecycle, to the lifecycleNotificationUrl), in sequence order. A row
# is deleted when its receiver answered 2xx.
notifications = Table(
    "notifications",
    metadata,
    Column(
        "subscription_id",
        String(36),
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("channel", String(1), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# ---------------------------------------------------------------- change log

# per mailbox: the seq of its last change (bumped, and so locked, by each writing transaction
# as its last step: seqs follow commit order) and the horizon (changes up to it were pruned)
change_counters = Table(
    "change_counters",
    metadata,
    Column("mailbox_id", String(36), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("horizon", BigInteger, nullable=False),
)

# every change to a mailbox's messages and folders (ports/changes.py), written in the same
# transaction as the change; read by delta queries (and notifications)
changes = Table(
    "changes",
    metadata,
    Column("mailbox_id", String(36), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("kind", String(8), nullable=False),  # message | folder
    Column("item_id", String(64), nullable=False),
    Column("folder_id", String(64), nullable=False),
    Column("prior_folder_id", String(64), nullable=True),
    Column("change_type", String(8), nullable=False),  # created | updated | deleted
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_changes_at", "at_ms"),
)

# ---------------------------------------------------------------- mailbox settings

# GET/PATCH mailboxSettings: the whole settings as Graph's JSON (domain/settings.py); a row
# only once they were changed. ``reply_epoch`` grows with every change of the automatic
# replies: the period in which each sender is answered once.
mailbox_settings = Table(
    "mailbox_settings",
    metadata,
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("document", LargeBinary, nullable=False),
    Column("reply_epoch", BigInteger, nullable=False),
    Column("modified_ms", BigInteger, nullable=False),
)

# the master list of categories (outlook/masterCategories); names unique in any case
master_categories = Table(
    "master_categories",
    metadata,
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("name_lower", Text, nullable=False),
    Column("color", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_master_categories_name", "mailbox_id", "name_lower", unique=True),
)

# Focused Inbox overrides (inferenceClassification/overrides): one per sender address
inference_overrides = Table(
    "inference_overrides",
    metadata,
    Column("mailbox_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("address", Text, nullable=False),  # lower case
    Column("name", Text, nullable=True),
    Column("classify_as", String(8), nullable=False),  # focused | other
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_inference_overrides_address", "mailbox_id", "address", unique=True),
)
