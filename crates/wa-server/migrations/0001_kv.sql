-- The core's tables (wa_server_core::store::Table) as one ordered key-value table: `tbl` is the
-- table's position in Table::ALL, `k` and `v` the key and value bytes. bytea compares byte by
-- byte (memcmp, then length), the order range scans rely on.
CREATE TABLE kv (
    tbl smallint NOT NULL,
    k bytea NOT NULL,
    v bytea NOT NULL,
    PRIMARY KEY (tbl, k)
);

-- Message sequence numbers (WriteTxn::next_seq): unique and increasing across every node,
-- without making every relay conflict with every other on one counter record.
CREATE SEQUENCE msg_seq AS bigint MINVALUE 1;
