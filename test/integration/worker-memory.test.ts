import { workerSuite } from "./worker-suite.js";

workerSuite("the memory broker", {
  brokerUrl: "memory://worker-suite",
  backendUrl: "memory://worker-suite",
});
