// @testbed/plugins: Service and environment plugins and their registry
