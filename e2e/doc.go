// Package e2e holds Hookstream's end-to-end suite: the producer, router and
// deliverer run against a broker the suite starts itself (kfake in-process by
// default; real Apache Kafka when HOOKSTREAM_TEST_BROKER=kafka), and local
// receivers verify every delivery.
package e2e
