import { MemoryBroker } from "../../sdk/src/brokers/memory/broker.js";
import { brokerConformance } from "./broker-suite.js";

brokerConformance("memory", { create: () => new MemoryBroker("memory://conformance") });
