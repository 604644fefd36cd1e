// @testbed/fleet: Drive a fleet of agents over MQTT (operator, agent, commander, embedded broker)
