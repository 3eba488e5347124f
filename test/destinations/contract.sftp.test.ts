import { destinationContract } from './contract.js';
import { startSshd } from '../helpers/sshd.js';
import { getFreePort } from '../helpers/free-port.js';

// The destination contract against a real OpenSSH server whose remote folder is a 64 MiB tmpfs (a disk that fills up).
destinationContract('sftp', async () => {
  const sshd = await startSshd({ tmpfsSize: '64m' });
  const config = {
    type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath, hostKey: sshd.hostKeyFingerprint, path: sshd.root,
  };
  // A key the server does not authorise: the host key is right, the login is refused.
  const other = await startSshd();
  return {
    config,
    async damage(_d, w) {
      // Flip one byte of the stored file where sshd sees it (in its mount namespace).
      const file = `${sshd.root}/${w.pending}`;
      const script = "const fs=require('fs');const f=process.argv[1];const fd=fs.openSync(f,'r+');const b=Buffer.alloc(1);fs.readSync(fd,b,0,1,1000);b[0]^=0xff;fs.writeSync(fd,b,0,1,1000);fs.closeSync(fd)";
      const r = await sshd.inNamespace([process.execPath, '-e', script, file]);
      if (r.code !== 0) throw new Error(`damage failed: ${r.stderr}`);
    },
    badAuth: { ...config, privateKey: other.clientKeyPath },
    unreachable: { ...config, port: await getFreePort() },
    full: { config, bytes: 80 * 1024 * 1024 },
    async stop() {
      await other.stop();
      await sshd.stop();
    },
  };
});
