"""Developer tools that look at the whole platform (the kit and the four services); nothing here runs in a service."""
