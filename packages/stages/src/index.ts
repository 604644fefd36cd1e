// @testbed/stages: Named topologies of Docker containers and networks (up, down, status, connect, exec)
