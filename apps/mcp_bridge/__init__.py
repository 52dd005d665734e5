"""The MCP door (DESIGN §7): Streamable HTTP at /mcp, tools generated from deployed workflows plus platform tools.

Not named `mcp`: that would shadow the SDK. Like every door it authenticates, resolves the tenant, calls the
services and selectors of the other apps, and renders their results as MCP tool results; no rule lives here.
"""
