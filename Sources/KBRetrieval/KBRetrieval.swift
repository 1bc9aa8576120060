// Answering questions from opened indexes: see Package.swift target map.
