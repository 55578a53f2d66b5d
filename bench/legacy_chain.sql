-- The DDL of the legacy Alembic chain, step by step, for timing `alembic
-- upgrade head` beside `chatdb migrate` (bench/bench_startup.py). A stand-in
-- for the legacy backend's revision files, which are not part of this
-- repository: the benchmark checks that replaying it gives the catalog of the
-- real legacy head (tests/legacy_dumps/14_6d8986f38d7b.sql), trigger function
-- text included, before it times anything.

-- b57e558cf11f: threads and messages, varchar ids, naive timestamps, messages.order
CREATE TABLE threads (
    thread_id VARCHAR NOT NULL,
    vlab_id VARCHAR NOT NULL,
    project_id VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    creation_date TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    update_date TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    user_id VARCHAR NOT NULL,
    PRIMARY KEY (thread_id)
);
CREATE TABLE messages (
    message_id VARCHAR NOT NULL,
    "order" INTEGER NOT NULL,
    creation_date TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    content VARCHAR NOT NULL,
    thread_id VARCHAR NOT NULL,
    PRIMARY KEY (message_id),
    FOREIGN KEY (thread_id) REFERENCES threads (thread_id)
);
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version VALUES ('b57e558cf11f');

-- 169bed537507: entity enum and messages.entity
CREATE TYPE entity AS ENUM ('USER', 'AI_TOOL', 'TOOL', 'AI_MESSAGE');
ALTER TABLE messages ADD COLUMN entity entity NOT NULL;

-- cf9eedbf9270: tool_calls
CREATE TABLE tool_calls (
    tool_call_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    arguments VARCHAR NOT NULL,
    validated BOOLEAN,
    message_id VARCHAR NOT NULL,
    PRIMARY KEY (tool_call_id),
    FOREIGN KEY (message_id) REFERENCES messages (message_id)
);

-- 818a9ba86187: vlab_id and project_id nullable
ALTER TABLE threads ALTER COLUMN vlab_id DROP NOT NULL;
ALTER TABLE threads ALTER COLUMN project_id DROP NOT NULL;

-- 08a638866869: messages.is_complete, backfilled then not null
ALTER TABLE messages ADD COLUMN is_complete BOOLEAN;
UPDATE messages SET is_complete = true;
ALTER TABLE messages ALTER COLUMN is_complete SET NOT NULL;

-- 0ea274d7a584: drop messages.order
ALTER TABLE messages DROP COLUMN "order";

-- 52d7f4485020: messages.model
ALTER TABLE messages ADD COLUMN model VARCHAR;

-- 529e44b33a67: ids to uuid (foreign keys dropped and re-created around it)
ALTER TABLE messages DROP CONSTRAINT messages_thread_id_fkey;
ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_message_id_fkey;
ALTER TABLE threads ALTER COLUMN thread_id TYPE UUID USING thread_id::uuid;
ALTER TABLE threads ALTER COLUMN vlab_id TYPE UUID USING vlab_id::uuid;
ALTER TABLE threads ALTER COLUMN project_id TYPE UUID USING project_id::uuid;
ALTER TABLE threads ALTER COLUMN user_id TYPE UUID USING user_id::uuid;
ALTER TABLE messages ALTER COLUMN message_id TYPE UUID USING message_id::uuid;
ALTER TABLE messages ALTER COLUMN thread_id TYPE UUID USING thread_id::uuid;
ALTER TABLE tool_calls ALTER COLUMN message_id TYPE UUID USING message_id::uuid;
ALTER TABLE messages ADD CONSTRAINT messages_thread_id_fkey
    FOREIGN KEY (thread_id) REFERENCES threads (thread_id);
ALTER TABLE tool_calls ADD CONSTRAINT tool_calls_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (message_id);

-- dde4f8453a14: tool_selection
CREATE TABLE tool_selection (
    id UUID NOT NULL,
    message_id UUID NOT NULL,
    selected_tools VARCHAR NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY (message_id) REFERENCES messages (message_id)
);

-- 02aab0a6eef4: token_consumption with its enums; drop messages.model;
-- tool_selection.selected_tools gives way to tool_name
CREATE TYPE tokentype AS ENUM ('INPUT_NONCACHED', 'INPUT_CACHED', 'COMPLETION');
CREATE TYPE task AS ENUM ('CHAT_COMPLETION', 'TOOL_SELECTION');
CREATE TABLE token_consumption (
    id UUID NOT NULL,
    message_id UUID NOT NULL,
    type tokentype NOT NULL,
    task task NOT NULL,
    count INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY (message_id) REFERENCES messages (message_id)
);
ALTER TABLE messages DROP COLUMN model;
ALTER TABLE tool_selection ADD COLUMN tool_name VARCHAR NOT NULL;
ALTER TABLE tool_selection DROP COLUMN selected_tools;

-- 7122d2f48028: timestamps to timestamptz, old values read as UTC
ALTER TABLE threads ALTER COLUMN creation_date TYPE TIMESTAMP WITH TIME ZONE
    USING creation_date AT TIME ZONE 'UTC';
ALTER TABLE threads ALTER COLUMN update_date TYPE TIMESTAMP WITH TIME ZONE
    USING update_date AT TIME ZONE 'UTC';
ALTER TABLE messages ALTER COLUMN creation_date TYPE TIMESTAMP WITH TIME ZONE
    USING creation_date AT TIME ZONE 'UTC';

-- 12bd7610cbc2: task label CALL_WITHIN_TOOL
ALTER TYPE task ADD VALUE 'CALL_WITHIN_TOOL';

-- cd5a73ea91db: search_vector, trigger function, trigger, backfill, GIN index
ALTER TABLE messages ADD COLUMN search_vector TSVECTOR;
CREATE FUNCTION update_messages_search_vector() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        BEGIN
            NEW.search_vector := CASE
                WHEN NEW.entity IN ('USER', 'AI_MESSAGE') THEN
                    to_tsvector('english',
                        COALESCE(
                            CASE
                                WHEN NEW.content::jsonb ? 'content' THEN
                                    NEW.content::jsonb->>'content'
                                ELSE ''
                            END,
                            ''
                        )
                    )
                ELSE to_tsvector('english', '')
            END;
            RETURN NEW;
        END;
        $$;
CREATE TRIGGER messages_search_vector_trigger
BEFORE INSERT OR UPDATE ON messages
FOR EACH ROW EXECUTE FUNCTION update_messages_search_vector();
UPDATE messages SET content = content;
CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector);

-- 6d8986f38d7b: complexity_estimation and reasoninglevels (head)
CREATE TYPE reasoninglevels AS ENUM ('NONE', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH');
CREATE TABLE complexity_estimation (
    id UUID NOT NULL,
    complexity INTEGER,
    model VARCHAR NOT NULL,
    reasoning reasoninglevels,
    message_id UUID NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY (message_id) REFERENCES messages (message_id)
);
UPDATE alembic_version SET version_num = '6d8986f38d7b';
