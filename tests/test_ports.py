"""The free-port picker every server and cluster here starts from (rag_stores.servers.process)."""

from rag_stores.servers.process import free_port, free_port_block


def test_ports_handed_out_never_repeat_before_a_server_binds_them() -> None:
    # Nothing binds these ports, as while a server is still starting: without the memory of
    # ports handed out, ~300 draws from ~12,000 candidates repeat one almost surely.
    singles = [free_port() for _ in range(200)]
    blocks = [range(start, start + 4) for start in (free_port_block(4) for _ in range(25))]
    ports = singles + [p for block in blocks for p in block]
    assert len(set(ports)) == len(ports) == 300
