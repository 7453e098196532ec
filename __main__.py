"""The CareSync DR program: read validated settings, build this stack's site, export outputs."""
