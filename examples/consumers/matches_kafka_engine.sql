-- vigil's matches read by ClickHouse itself: a Kafka engine table decodes the topic's
-- Avro (Confluent framing, schemas from vigil's registry) and a materialized view keeps the
-- rows in a MergeTree table. For a ClickHouse server you run; replace the broker
-- (kafka:9092), the topic prefix (vigil.) and the registry URL (vigil's API with a key that
-- has registry:read as the password) with yours.
--
-- Columns are picked from vigil.Match by name, nested fields by their dotted path.

CREATE TABLE vigil_matches_queue (
    id String,
    hash String,
    blockNumber UInt64,
    blockHash String,
    timestamp Int64,
    `monitor.id` String,
    `monitor.name` String,
    `monitor.network` String,
    `monitor.severity` String,
    matchedAddresses Array(String)
) ENGINE = Kafka
SETTINGS kafka_broker_list = 'kafka:9092',
         kafka_topic_list = 'vigil.monitor.matches',
         kafka_group_name = 'clickhouse-matches',
         kafka_format = 'AvroConfluent',
         format_avro_schema_registry_url = 'http://vigil:API_KEY@vigil-api:8420';

CREATE TABLE vigil_matches (
    id String,
    monitor_id LowCardinality(String),
    monitor_name String,
    network LowCardinality(String),
    severity LowCardinality(String),
    block_number UInt64,
    block_hash String,
    transaction_hash String,
    block_time DateTime('UTC'),
    matched_addresses Array(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_time)
ORDER BY (monitor_id, block_time, id);

CREATE MATERIALIZED VIEW vigil_matches_mv TO vigil_matches AS
SELECT id,
       `monitor.id` AS monitor_id,
       `monitor.name` AS monitor_name,
       `monitor.network` AS network,
       `monitor.severity` AS severity,
       blockNumber AS block_number,
       blockHash AS block_hash,
       hash AS transaction_hash,
       toDateTime(timestamp, 'UTC') AS block_time,
       matchedAddresses AS matched_addresses
FROM vigil_matches_queue;
