"""The agent's command line: `keygen` (a new sealing key), `check` (reach the DCs), `run` (take jobs)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

from onprem_agent import VERSION
from onprem_agent.agent import Agent
from onprem_agent.config import AgentConfig, load
from onprem_agent.directory import Directory
from onprem_agent.expiry import ExpiryReports, ExpiryScanner
from onprem_agent.ledger import Ledger
from onprem_agent.unsealing import KeyRing, generate_key, load_key, public_base64
from shared.domain.onprem_jobs import AGENTS_TABLE, EXPIRY_TABLE, JOBS_QUEUE, LEDGER_TABLE, RESULTS_QUEUE


def build(config: AgentConfig) -> Agent:
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    prefix = config.storage.prefix
    if config.storage.connection_string_file is not None:
        conn = config.storage.connection_string_file.read_text().strip()
        queues = QueueServiceClient.from_connection_string(conn)
        tables = TableServiceClient.from_connection_string(conn)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        queues = QueueServiceClient(str(config.storage.queue_url), credential=credential)
        tables = TableServiceClient(str(config.storage.table_url), credential=credential)
    # Base64 bodies, as the service's queue clients write and read them.
    encoding = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
    jobs = queues.get_queue_client(JOBS_QUEUE.format(prefix=prefix), **encoding)
    results = queues.get_queue_client(RESULTS_QUEUE.format(prefix=prefix), **encoding)
    for client in (jobs, results):
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
    ledger_table = tables.create_table_if_not_exists(LEDGER_TABLE.format(prefix=prefix))
    agents_table = tables.create_table_if_not_exists(AGENTS_TABLE.format(prefix=prefix))
    expiry_table = tables.create_table_if_not_exists(EXPIRY_TABLE.format(prefix=prefix))
    password = config.directory.bind_password_file.read_text().strip()
    directory = Directory(config.directory, password)
    agent = Agent(config.agent_id, jobs, results,
                  Ledger(ledger_table, config.agent_id, timedelta(seconds=config.lease_s)), agents_table,
                  directory, KeyRing.from_files(config.private_key_files))
    agent.lease_s = config.lease_s
    agent.expiry = ExpiryReports(expiry_table, config.agent_id)
    if config.expiry_scan_s > 0:
        agent.scanner = ExpiryScanner(agent.expiry, directory, config.expiry_scan_s)
    return agent


def _logging(config: AgentConfig | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config is not None and config.log_file is not None:
        handlers.append(logging.FileHandler(config.log_file))
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem_agent", description=f"SSPR on-premises agent {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="write a new private key; print its public key for the service")
    keygen.add_argument("--out", type=Path, required=True)
    pub = sub.add_parser("public-key", help="print the public key of an existing private key")
    pub.add_argument("key", type=Path)
    for name in ("check", "run"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "keygen":
        print(generate_key(args.out))
        return 0
    if args.command == "public-key":
        print(public_base64(load_key(args.key)))
        return 0
    config = load(args.config)
    _logging(config)
    if args.command == "check":
        password = config.directory.bind_password_file.read_text().strip()
        hints = Directory(config.directory, password).check()
        for dc, supported in hints.items():
            print(f"{dc}: reached; password-policy-hints control {'supported' if supported else 'not supported'}")
        return 0
    agent = build(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("onprem_agent").info("agent %s %s started", config.agent_id, VERSION)
    agent.run(stop, config.concurrency, config.poll_s, config.heartbeat_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
