// The server faces of kbindex (`serve`, `mcp`): see Package.swift's target map.
