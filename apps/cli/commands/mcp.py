"""`nexus mcp tools|config`: what an MCP agent of a tenant sees, and ready-made client configurations."""

import json
import shlex
from urllib.parse import urlsplit

from django.conf import settings
from rich.panel import Panel

from apps.catalogue.selectors import tool_catalogue
from apps.cli.context import table
from apps.cli.verbs import leaf

KEY_PLACEHOLDER = "<YOUR_NXK_KEY>"
SERVER_NAME = "nexus"


def register(verbs) -> None:
    group = verbs.add_parser("mcp", help="the MCP endpoint: its tools and client configurations")
    sub = group.add_subparsers(dest="mcp_verb", metavar="VERB", required=True)
    leaf(sub, "tools", list_tools, "list the tools an MCP agent of the tenant sees (what tools/list answers)")
    config = leaf(sub, "config", show_config, "print MCP client configurations for this installation")
    config.add_argument("--url", default=None, help="the MCP endpoint (default http://NEXUS_HOST:NEXUS_PORT/mcp)")
    config.add_argument("--key", default=None, help=f"an API key to put in them (default the placeholder {KEY_PLACEHOLDER})")


def list_tools(ctx, options) -> None:
    tools = tool_catalogue(principal=ctx.principal, tenant=ctx.tenant)
    data = {"tenant": ctx.tenant.slug, "count": len(tools), "tools": [tool.as_dict() for tool in tools]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                f"MCP tools of {d['tenant']} ({d['count']})",
                ["name", "kind", "description"],
                [
                    [
                        t["name"],
                        _kind(t.get("annotations", {})),
                        (t.get("description") or "").split("\n")[0][:100],
                    ]
                    for t in d["tools"]
                ],
            )
        ),
    )


def _kind(annotations: dict) -> str:
    if annotations.get("readOnlyHint"):
        return "read-only"
    return "destructive" if annotations.get("destructiveHint") else "writes"


def client_configs(*, url: str, key: str | None) -> dict:
    """Configurations for common MCP clients. Never invents a key: the given one, or a placeholder to replace."""
    secret = key or KEY_PLACEHOLDER
    authorization = f"Bearer {secret}"
    bridge = ["-y", "mcp-remote", url, "--header", "Authorization:${NEXUS_AUTH}"]
    if urlsplit(url).scheme == "http" and urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        bridge.append("--allow-http")  # mcp-remote refuses plain HTTP beyond this machine unless told
    return {
        "url": url,
        "headers": {"Authorization": authorization},
        "key_given": key is not None,
        # Cursor, Windsurf and other clients that speak Streamable HTTP themselves.
        "mcpServers": {SERVER_NAME: {"url": url, "headers": {"Authorization": authorization}}},
        # Claude Desktop's config file starts local (stdio) servers: the mcp-remote bridge from npm speaks HTTP for it.
        "claude_desktop": {
            "mcpServers": {
                SERVER_NAME: {
                    "command": "npx",
                    "args": bridge,
                    "env": {"NEXUS_AUTH": authorization},
                }
            }
        },
        # VS Code (.vscode/mcp.json).
        "vscode": {"servers": {SERVER_NAME: {"type": "http", "url": url, "headers": {"Authorization": authorization}}}},
        "claude_code": shlex.join(
            ["claude", "mcp", "add", "--transport", "http", SERVER_NAME, url, "--header", f"Authorization: {authorization}"]
        ),
        "inspector": shlex.join(
            [
                "npx",
                "-y",
                "@modelcontextprotocol/inspector",
                "--cli",
                url,
                "--transport",
                "http",
                "--method",
                "tools/list",
                "--header",
                f"Authorization: {authorization}",
            ]
        ),
    }


def show_config(ctx, options) -> None:
    url = options["url"] or f"http://{settings.NEXUS_HOST}:{settings.NEXUS_PORT}/mcp"
    data = client_configs(url=url, key=options["key"])

    def render(out, d) -> None:
        out.print(Panel(f"URL     {d['url']}\nHeader  Authorization: {d['headers']['Authorization']}", title="Nexus MCP"))
        if not d["key_given"]:
            out.print(f"Replace {KEY_PLACEHOLDER} with an API key: nexus apikey create --role operator")
        out.print("\n[bold]Cursor / Windsurf / any Streamable HTTP client[/] (mcpServers):")
        out.print_json(json.dumps({"mcpServers": d["mcpServers"]}))
        out.print("\n[bold]Claude Desktop[/] (claude_desktop_config.json, through mcp-remote):")
        out.print_json(json.dumps(d["claude_desktop"]))
        out.print("\n[bold]VS Code[/] (.vscode/mcp.json):")
        out.print_json(json.dumps(d["vscode"]))
        out.print(f"\n[bold]Claude Code[/]\n  {d['claude_code']}")
        out.print(f"\n[bold]MCP Inspector (CLI)[/]\n  {d['inspector']}")

    ctx.emit(data, render)
