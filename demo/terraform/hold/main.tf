# Demo only: keeps `terraform test` between apply and destroy while `make demo` drives the stack.
# It writes the applied outputs to a file and waits for the demo to finish (demo/hold.py).
# DEMO_PYTHON, DEMO_ROOT and DEMO_STATE_DIR come from the environment demo/run_demo.py gives terraform.
terraform {
  required_version = ">= 1.9"
}

variable "outputs" {
  description = "Outputs of the applied stack, handed to the demo."
  type        = any
}

resource "terraform_data" "hold" {
  input = var.outputs

  provisioner "local-exec" {
    command = "cd \"$DEMO_ROOT\" && \"$DEMO_PYTHON\" -m demo.hold --outputs-file \"$DEMO_STATE_DIR/outputs.json\" --done-file \"$DEMO_STATE_DIR/done\" --outputs \"$OUTPUTS\""
    environment = {
      OUTPUTS = jsonencode(var.outputs)
    }
  }
}

output "held" {
  description = "The outputs the demo drove."
  value       = terraform_data.hold.output
}
